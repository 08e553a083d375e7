//! Writes small MaxMind-format databases for tests: an IPv4 search tree with
//! 24-bit records, a data section, and the metadata the format requires.

use std::net::Ipv4Addr;

/// A value in the MaxMind data format.
pub enum Value {
    Str(String),
    Double(f64),
    U16(u16),
    U32(u32),
    U64(u64),
    Map(Vec<(String, Value)>),
    Array(Vec<Value>),
}

fn control(kind: u8, size: usize, out: &mut Vec<u8>) {
    let (first, extended) = if kind <= 7 { (kind << 5, None) } else { (0, Some(kind - 7)) };
    let size_bits = match size {
        0..=28 => size as u8,
        29..=284 => 29,
        _ => 30,
    };
    out.push(first | size_bits);
    if let Some(ext) = extended {
        out.push(ext);
    }
    match size {
        0..=28 => {}
        29..=284 => out.push((size - 29) as u8),
        _ => out.extend_from_slice(&((size - 285) as u16).to_be_bytes()),
    }
}

fn uint(kind: u8, value: u64, out: &mut Vec<u8>) {
    let bytes = value.to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count();
    control(kind, 8 - skip, out);
    out.extend_from_slice(&bytes[skip..]);
}

impl Value {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Value::Str(s) => {
                control(2, s.len(), out);
                out.extend_from_slice(s.as_bytes());
            }
            Value::Double(d) => {
                control(3, 8, out);
                out.extend_from_slice(&d.to_be_bytes());
            }
            Value::U16(v) => uint(5, u64::from(*v), out),
            Value::U32(v) => uint(6, u64::from(*v), out),
            Value::U64(v) => uint(9, *v, out),
            Value::Map(pairs) => {
                control(7, pairs.len(), out);
                for (key, value) in pairs {
                    Value::Str(key.clone()).encode(out);
                    value.encode(out);
                }
            }
            Value::Array(items) => {
                control(11, items.len(), out);
                for item in items {
                    item.encode(out);
                }
            }
        }
    }
}

/// A City-style record: country code, English city name, coordinates.
pub fn city(country: &str, city: &str, latitude: f64, longitude: f64) -> Value {
    let s = |t: &str| Value::Str(t.to_owned());
    Value::Map(vec![
        ("country".into(), Value::Map(vec![("iso_code".into(), s(country))])),
        (
            "city".into(),
            Value::Map(vec![("names".into(), Value::Map(vec![("en".into(), s(city))]))]),
        ),
        (
            "location".into(),
            Value::Map(vec![
                ("latitude".into(), Value::Double(latitude)),
                ("longitude".into(), Value::Double(longitude)),
            ]),
        ),
    ])
}

#[derive(Clone, Copy)]
enum Record {
    Empty,
    Node(usize),
    Data(usize),
}

/// A database mapping each IPv4 network (address, prefix length) to a value.
pub fn database(networks: &[(Ipv4Addr, u8, Value)]) -> Vec<u8> {
    let mut data = Vec::new();
    let mut nodes: Vec<[Record; 2]> = vec![[Record::Empty; 2]];
    for (network, prefix, value) in networks {
        let offset = data.len();
        value.encode(&mut data);
        let bits = u32::from(*network);
        let mut node = 0;
        for depth in 0..*prefix {
            let bit = ((bits >> (31 - depth)) & 1) as usize;
            if depth + 1 == *prefix {
                nodes[node][bit] = Record::Data(offset);
                break;
            }
            node = match nodes[node][bit] {
                Record::Node(next) => next,
                _ => {
                    nodes.push([Record::Empty; 2]);
                    nodes[node][bit] = Record::Node(nodes.len() - 1);
                    nodes.len() - 1
                }
            };
        }
    }

    let count = nodes.len();
    let mut out = Vec::new();
    for node in &nodes {
        for record in node {
            let value = match record {
                Record::Empty => count,
                Record::Node(next) => *next,
                Record::Data(offset) => count + 16 + offset,
            } as u32;
            out.extend_from_slice(&value.to_be_bytes()[1..]);
        }
    }
    out.extend_from_slice(&[0u8; 16]);
    out.extend_from_slice(&data);
    out.extend_from_slice(b"\xAB\xCD\xEFMaxMind.com");
    Value::Map(vec![
        ("node_count".into(), Value::U32(count as u32)),
        ("record_size".into(), Value::U16(24)),
        ("ip_version".into(), Value::U16(4)),
        ("database_type".into(), Value::Str("keyri-test-City".into())),
        ("languages".into(), Value::Array(vec![Value::Str("en".into())])),
        ("binary_format_major_version".into(), Value::U16(2)),
        ("binary_format_minor_version".into(), Value::U16(0)),
        ("build_epoch".into(), Value::U64(1_796_400_000)),
        ("description".into(), Value::Map(vec![("en".into(), Value::Str("test".into()))])),
    ])
    .encode(&mut out);
    out
}
