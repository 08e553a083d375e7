//! Every seed and every saved crash of the fuzz targets in `fuzz/`, run
//! through the same functions on the stable toolchain, so an input that once
//! broke something is checked on every test run.

type Target = fn(&[u8]);

const TARGETS: [(&str, Target); 4] = [
    ("request_bodies", keyri::fuzzing::request_bodies),
    ("hpke_open", keyri::fuzzing::hpke_open),
    ("qr_text", keyri::fuzzing::qr_text),
    ("config_text", keyri::fuzzing::config_text),
];

fn inputs(kind: &str, target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz").join(kind).join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else { return Vec::new() };
    entries
        .filter_map(Result::ok)
        .map(|e| (e.path().display().to_string(), std::fs::read(e.path()).expect("readable")))
        .collect()
}

#[test]
fn every_seed_and_saved_crash_passes_its_target() {
    let mut seen = 0;
    for (target, run) in TARGETS {
        for kind in ["corpus", "regressions"] {
            for (name, data) in inputs(kind, target) {
                let outcome = std::panic::catch_unwind(|| run(&data));
                assert!(outcome.is_ok(), "{target}: {name} panics");
                seen += 1;
            }
        }
    }
    assert!(seen >= 6, "the seed inputs were not found: {seen}");
}

#[test]
fn the_targets_refuse_and_round_trip_as_they_check() {
    keyri::fuzzing::hpke_open(&[4u8; 200]);
    keyri::fuzzing::qr_text(b"https://x/q?s=q1w2e3r4t5y6u7i8o9p0aQ&k=AAAAAAAAAAAAAAAAAAAAAA");
    keyri::fuzzing::config_text(keyri::config::SAMPLE.as_bytes());
    keyri::fuzzing::request_bodies(b"{\"type\":\"hello\"}");
}
