//! Where an address is, from an optional MaxMind-format database (GeoLite2 or
//! GeoIP2 City or Country, or any database with the same record layout).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;

use serde::Deserialize;

use crate::protocol::messages::Location;

/// An opened database, read into memory once at start.
pub struct GeoDb {
    reader: maxminddb::Reader<Vec<u8>>,
}

#[derive(Deserialize, Default)]
struct Record {
    country: Option<Country>,
    city: Option<City>,
    location: Option<Coordinates>,
}

#[derive(Deserialize, Default)]
struct Country {
    iso_code: Option<String>,
}

#[derive(Deserialize, Default)]
struct City {
    names: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize, Default)]
struct Coordinates {
    latitude: Option<f64>,
    longitude: Option<f64>,
}

/// What the database knows of one address.
#[derive(Debug, Clone, PartialEq)]
pub struct Place {
    pub location: Location,
    /// Latitude and longitude in degrees, when known.
    pub coordinates: Option<(f64, f64)>,
}

impl GeoDb {
    pub fn open(path: &Path) -> Result<Self, String> {
        let reader = maxminddb::Reader::open_readfile(path)
            .map_err(|e| format!("cannot read the GeoIP database {}: {e}", path.display()))?;
        Ok(Self { reader })
    }

    /// The place of an address; `None` when the database has nothing for it.
    pub fn place(&self, ip: IpAddr) -> Option<Place> {
        let found = self.reader.lookup(ip.to_canonical()).ok()?;
        let record: Record = found.decode().ok()??;
        let country = record.country.and_then(|c| c.iso_code);
        let city = record.city.and_then(|c| c.names).and_then(|names| names.get("en").cloned());
        if country.is_none() && city.is_none() {
            return None;
        }
        let coordinates = record.location.and_then(|l| Some((l.latitude?, l.longitude?)));
        Some(Place { location: Location { country, city }, coordinates })
    }
}

/// Great-circle distance between two points, in whole kilometres.
pub fn distance_km(a: (f64, f64), b: (f64, f64)) -> u32 {
    let (lat1, lon1) = (a.0.to_radians(), a.1.to_radians());
    let (lat2, lon2) = (b.0.to_radians(), b.1.to_radians());
    let h = ((lat2 - lat1) / 2.0).sin().powi(2)
        + lat1.cos() * lat2.cos() * ((lon2 - lon1) / 2.0).sin().powi(2);
    (2.0 * 6371.0 * h.sqrt().asin()).round() as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances_between_known_cities() {
        let berlin = (52.52, 13.405);
        let paris = (48.8566, 2.3522);
        let km = distance_km(berlin, paris);
        assert!((870..=885).contains(&km), "{km}");
        assert_eq!(distance_km(berlin, berlin), 0);
    }
}
