//! Facts about the caller: its address and what its user agent says it is.

use std::net::IpAddr;

use actix_web::HttpRequest;

/// The client's address: the peer, or what trusted proxies say it is
/// (see `Defences::client_ip`).
pub fn client_ip(req: &HttpRequest) -> IpAddr {
    match req.app_data::<actix_web::web::Data<super::AppState>>() {
        Some(state) => state.defences.client_ip(req),
        None => req.peer_addr().map_or(IpAddr::from([0, 0, 0, 0]), |a| a.ip()),
    }
}

/// The addresses a request passed through, farthest first, from one
/// forwarding header: `X-Forwarded-For`, or `Forwarded` when `standard`.
/// An entry that is not an address (`unknown`, `_hidden`, garbage) is kept as
/// `None`, since it still stands for a hop. Only meaningful when the peer is
/// a trusted proxy.
pub fn forwarded_for(req: &HttpRequest, standard: bool) -> Vec<Option<IpAddr>> {
    let name = if standard { "forwarded" } else { "x-forwarded-for" };
    let entries: Vec<String> = req
        .headers()
        .get_all(name)
        .map(|v| v.to_str().unwrap_or("?"))
        .flat_map(|v| v.split(',').map(|s| s.trim().to_owned()).collect::<Vec<_>>())
        .collect();
    entries
        .iter()
        .map(|entry| match standard {
            true => entry.split(';').find_map(|pair| {
                let (key, value) = pair.trim().split_once('=')?;
                key.trim().eq_ignore_ascii_case("for").then(|| parse_node(value))?
            }),
            false => parse_node(entry),
        })
        .collect()
}

/// An address from `for=` or `X-Forwarded-For`: `198.51.100.7`,
/// `"[2001:db8::1]:4711"`, `198.51.100.7:80`.
fn parse_node(text: &str) -> Option<IpAddr> {
    let text = text.trim().trim_matches('"');
    if let Ok(ip) = text.parse() {
        return Some(ip);
    }
    if let Some(rest) = text.strip_prefix('[') {
        return rest.split(']').next()?.parse().ok();
    }
    text.rsplit_once(':').and_then(|(host, _)| host.parse().ok())
}

pub fn header_str<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// Whether two addresses are on different networks: their /24 (IPv4) or
/// /48 (IPv6) differ, or one is IPv4 and the other IPv6.
pub fn different_network(a: IpAddr, b: IpAddr) -> bool {
    match (a.to_canonical(), b.to_canonical()) {
        (IpAddr::V4(a), IpAddr::V4(b)) => a.octets()[..3] != b.octets()[..3],
        (IpAddr::V6(a), IpAddr::V6(b)) => a.segments()[..3] != b.segments()[..3],
        _ => true,
    }
}

/// A short browser name with its major version, and the operating system,
/// read from a User-Agent string. Unknown parts come back as "Unknown".
pub fn browser_and_os(ua: &str) -> (String, String) {
    let version_after = |marker: &str| {
        ua.split(marker)
            .nth(1)
            .map(|rest| rest.split(|c: char| !c.is_ascii_digit()).next().unwrap_or(""))
            .filter(|v| !v.is_empty())
    };
    let browsers = [
        ("Edg/", "Edge"),
        ("OPR/", "Opera"),
        ("SamsungBrowser/", "Samsung Internet"),
        ("Firefox/", "Firefox"),
        ("Chrome/", "Chrome"),
        ("Version/", "Safari"),
    ];
    let browser = browsers
        .iter()
        .find_map(|(marker, name)| version_after(marker).map(|v| format!("{name} {v}")))
        .unwrap_or_else(|| "Unknown".into());

    let systems = [
        ("Windows", "Windows"),
        ("Android", "Android"),
        ("iPhone", "iOS"),
        ("iPad", "iPadOS"),
        ("CrOS", "ChromeOS"),
        ("Mac OS X", "macOS"),
        ("Tizen", "Tizen"),
        ("Web0S", "webOS"),
        ("Linux", "Linux"),
    ];
    let os =
        systems.iter().find(|(marker, _)| ua.contains(marker)).map_or("Unknown", |(_, name)| name);
    (browser, os.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_common_user_agents() {
        let chrome = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 \
                      (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36";
        assert_eq!(browser_and_os(chrome), ("Chrome 156".into(), "Windows".into()));
        let safari = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 \
                      (KHTML, like Gecko) Version/17.5 Safari/605.1.15";
        assert_eq!(browser_and_os(safari), ("Safari 17".into(), "macOS".into()));
        let firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:130.0) Gecko/20100101 Firefox/130.0";
        assert_eq!(browser_and_os(firefox), ("Firefox 130".into(), "Linux".into()));
        assert_eq!(browser_and_os(""), ("Unknown".into(), "Unknown".into()));
    }

    #[test]
    fn only_the_chosen_forwarding_header_is_read_and_junk_stays_a_hop() {
        let ip = |s: &str| Some(s.parse::<IpAddr>().expect("ip"));
        let req = actix_web::test::TestRequest::default()
            .insert_header((
                "forwarded",
                "for=198.51.100.7;proto=https, for=\"[2001:db8::1]:4711\"",
            ))
            .insert_header(("x-forwarded-for", "203.0.113.9"))
            .to_http_request();
        assert_eq!(forwarded_for(&req, true), vec![ip("198.51.100.7"), ip("2001:db8::1")]);
        assert_eq!(forwarded_for(&req, false), vec![ip("203.0.113.9")]);

        let req = actix_web::test::TestRequest::default()
            .insert_header(("x-forwarded-for", "203.0.113.9, junk, 10.0.0.2:8080"))
            .to_http_request();
        assert_eq!(forwarded_for(&req, false), vec![ip("203.0.113.9"), None, ip("10.0.0.2")]);
    }

    #[test]
    fn networks_differ_by_prefix() {
        let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
        assert!(!different_network(ip("203.0.113.7"), ip("203.0.113.200")));
        assert!(different_network(ip("203.0.113.7"), ip("203.0.114.7")));
        assert!(!different_network(ip("2001:db8:1::1"), ip("2001:db8:1:ff::2")));
        assert!(different_network(ip("2001:db8:1::1"), ip("2001:db8:2::1")));
        assert!(different_network(ip("203.0.113.7"), ip("2001:db8::1")));
        assert!(!different_network(ip("::ffff:10.0.0.1"), ip("10.0.0.9")));
    }
}
