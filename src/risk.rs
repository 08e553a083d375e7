//! Risk signals shown to the phone before it confirms, against QR-login
//! phishing: an attacker relays a victim's phone to the attacker's own
//! browser session, so the browser and the phone are usually on different
//! networks and often in different countries. Per tenant, each signal can be
//! shown as a notice, raised as a warning, or refuse the login outright.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::geo::{Place, distance_km};
use crate::protocol::messages::risk;

/// What to do when a signal is present.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Listed in `notices`, for the app to show if it wants.
    Show,
    /// Listed in `risk`: the app must warn the user.
    Warn,
    /// The server refuses the session.
    Refuse,
}

/// The signals a tenant can set an action for.
pub const SIGNALS: [&str; 3] =
    [risk::DIFFERENT_NETWORK, risk::DIFFERENT_COUNTRY, risk::NATIVE_CLIENT];

/// Actions by signal name; a signal not named takes the default, `warn`.
pub type Policy = BTreeMap<String, Action>;

/// Parses `signal=action`, as given on the command line.
pub fn parse_rule(text: &str) -> Result<(String, Action), String> {
    let (signal, action) = text.split_once('=').ok_or_else(|| {
        format!("{text:?}: expected signal=action, e.g. different_country=refuse")
    })?;
    if !SIGNALS.contains(&signal) {
        return Err(format!("unknown risk signal {signal:?}; known: {}", SIGNALS.join(", ")));
    }
    let action = match action {
        "show" => Action::Show,
        "warn" => Action::Warn,
        "refuse" => Action::Refuse,
        _ => return Err(format!("{action:?}: the action is show, warn or refuse")),
    };
    Ok((signal.to_owned(), action))
}

/// Both ends of a login, as far as the server can tell.
pub struct Sides<'a> {
    pub widget_ip: IpAddr,
    pub widget_origin: Option<&'a str>,
    pub widget_place: Option<&'a Place>,
    pub mobile_ip: IpAddr,
    pub mobile_place: Option<&'a Place>,
    /// Whether a GeoIP database is there to locate either side.
    pub located: bool,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Assessment {
    /// Signals the app must warn about.
    pub warnings: Vec<String>,
    /// Signals shown for information.
    pub notices: Vec<String>,
    /// The first signal whose action is to refuse, if any.
    pub refused: Option<String>,
    pub distance_km: Option<u32>,
}

pub fn assess(sides: &Sides<'_>, policy: &Policy) -> Assessment {
    let mut present = Vec::new();
    if crate::http::client::different_network(sides.widget_ip, sides.mobile_ip) {
        present.push(risk::DIFFERENT_NETWORK);
    }
    let countries = |p: Option<&Place>| p.and_then(|p| p.location.country.clone());
    let (widget_country, mobile_country) =
        (countries(sides.widget_place), countries(sides.mobile_place));
    let refuses_country = policy.get(risk::DIFFERENT_COUNTRY) == Some(&Action::Refuse);
    let differ = match (&widget_country, &mobile_country) {
        (Some(a), Some(b)) => a != b,
        // A tenant that refuses other countries also refuses a side the
        // database cannot place: an attacker could pick such an address.
        _ => sides.located && refuses_country,
    };
    if differ {
        present.push(risk::DIFFERENT_COUNTRY);
    }
    if sides.widget_origin.is_none() {
        present.push(risk::NATIVE_CLIENT);
    }

    let mut assessment = Assessment::default();
    for signal in present {
        match policy.get(signal).copied().unwrap_or(Action::Warn) {
            Action::Show => assessment.notices.push(signal.to_owned()),
            Action::Warn => assessment.warnings.push(signal.to_owned()),
            Action::Refuse => {
                assessment.warnings.push(signal.to_owned());
                assessment.refused.get_or_insert_with(|| signal.to_owned());
            }
        }
    }
    let coordinates = |p: Option<&Place>| p.and_then(|p| p.coordinates);
    if let (Some(a), Some(b)) = (coordinates(sides.widget_place), coordinates(sides.mobile_place)) {
        assessment.distance_km = Some(distance_km(a, b));
    }
    assessment
}

/// A sentence for a refused login.
pub fn refusal_message(signal: &str) -> String {
    let why = match signal {
        risk::DIFFERENT_NETWORK => "the browser is on another network than the phone",
        risk::DIFFERENT_COUNTRY => "the browser is in another country than the phone",
        risk::NATIVE_CLIENT => "the login comes from an app, not a web page",
        _ => "of a risk signal",
    };
    format!("this login was refused because {why}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::messages::Location;

    fn place(country: &str, at: (f64, f64)) -> Place {
        Place {
            location: Location { country: Some(country.into()), city: None },
            coordinates: Some(at),
        }
    }

    #[test]
    fn signals_follow_the_policy() {
        let (de, fr) = (place("DE", (52.5, 13.4)), place("FR", (48.9, 2.35)));
        let sides = Sides {
            widget_ip: "203.0.113.7".parse().expect("ip"),
            widget_origin: None,
            widget_place: Some(&fr),
            mobile_ip: "198.51.100.4".parse().expect("ip"),
            mobile_place: Some(&de),
            located: true,
        };
        let default = assess(&sides, &Policy::new());
        assert_eq!(default.warnings, ["different_network", "different_country", "native_client"]);
        assert_eq!(default.refused, None);
        assert!(default.distance_km.is_some_and(|km| km > 800));

        let policy: Policy = [
            parse_rule("different_network=show").expect("rule"),
            parse_rule("different_country=refuse").expect("rule"),
        ]
        .into();
        let strict = assess(&sides, &policy);
        assert_eq!(strict.notices, ["different_network"]);
        assert_eq!(strict.warnings, ["different_country", "native_client"]);
        assert_eq!(strict.refused.as_deref(), Some("different_country"));
    }

    #[test]
    fn same_network_and_country_raise_nothing() {
        let de = place("DE", (52.5, 13.4));
        let sides = Sides {
            widget_ip: "203.0.113.7".parse().expect("ip"),
            widget_origin: Some("https://a.example"),
            widget_place: Some(&de),
            mobile_ip: "203.0.113.99".parse().expect("ip"),
            mobile_place: Some(&de),
            located: true,
        };
        assert_eq!(
            assess(&sides, &Policy::new()),
            Assessment { distance_km: Some(0), ..Default::default() }
        );
    }

    #[test]
    fn an_unplaced_side_counts_as_another_country_only_for_a_refusing_tenant() {
        let de = place("DE", (52.5, 13.4));
        let sides = Sides {
            widget_ip: "203.0.113.7".parse().expect("ip"),
            widget_origin: Some("https://a.example"),
            widget_place: None,
            mobile_ip: "203.0.113.9".parse().expect("ip"),
            mobile_place: Some(&de),
            located: true,
        };
        assert_eq!(assess(&sides, &Policy::new()), Assessment::default());
        let strict: Policy = [parse_rule("different_country=refuse").expect("rule")].into();
        assert_eq!(assess(&sides, &strict).refused.as_deref(), Some("different_country"));
        let without_database = Sides { located: false, ..sides };
        assert_eq!(assess(&without_database, &strict).refused, None);
    }

    #[test]
    fn rules_must_name_a_known_signal_and_action() {
        assert!(parse_rule("different_country=refuse").is_ok());
        assert!(parse_rule("different_country").is_err());
        assert!(parse_rule("weather=refuse").is_err());
        assert!(parse_rule("native_client=block").is_err());
    }
}
