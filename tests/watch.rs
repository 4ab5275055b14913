//! `Builder::watch` with real file changes in a temporary folder: an edit, a burst of edits, a
//! broken file (the last good output stays) and its fix, each observed in the rebuilt manifest.

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use common::json;
use kiln::Builder;
use kiln::watch::WatchEvent;

#[derive(Debug)]
enum Seen {
    Built {
        changed: Vec<PathBuf>,
        written: usize,
    },
    Failed(String),
}

fn file_of(out: &Path, logical: &str) -> String {
    json(&out.join("manifest.json"))["assets"][logical]["file"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn watch_rebuilds_on_changes_and_keeps_the_last_good_output() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("assets");
    std::fs::create_dir_all(src.join("css")).unwrap();
    std::fs::write(src.join("css/app.css"), ".a { color: red }\n").unwrap();
    std::fs::write(src.join("css/other.css"), ".b { color: blue }\n").unwrap();
    let out = dir.path().join("static");
    let config_file = dir.path().join("kiln.toml");
    std::fs::write(
        &config_file,
        "[manifest]\nformats = [\"kiln\", \"flask\"]\n",
    )
    .unwrap();
    let mut builder = Builder::from_config_file(&config_file)
        .unwrap()
        .src(&src)
        .out(&out);
    builder.config_mut().cache.dir = dir.path().join("cache");

    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel();
    let handle = {
        let stop = stop.clone();
        let config_file = config_file.clone();
        std::thread::spawn(move || {
            // Reloading keeps the paths given here, as the CLI keeps its flags.
            let (src, out, cache, file) = (
                builder.config().src.clone(),
                builder.config().out.clone(),
                builder.config().cache.dir.clone(),
                config_file.clone(),
            );
            let load = move || {
                let mut c = kiln::Config::load(&file)?;
                (c.src, c.out, c.cache.dir) = (src.clone(), out.clone(), cache.clone());
                Ok(c)
            };
            let source = kiln::watch::ConfigSource {
                file: &config_file,
                load: &load,
            };
            builder
                .watch(Some(source), &stop, |event| {
                    let seen = match event {
                        WatchEvent::Built {
                            report, changed, ..
                        } => Seen::Built {
                            changed: changed.to_vec(),
                            written: report.written,
                        },
                        WatchEvent::Failed { error, .. } => Seen::Failed(error.to_string()),
                        _ => return,
                    };
                    tx.send(seen).unwrap();
                })
                .unwrap();
        })
    };
    let next = || {
        rx.recv_timeout(Duration::from_secs(20))
            .expect("a build within 20 s")
    };

    assert!(
        matches!(next(), Seen::Built { ref changed, .. } if changed.is_empty()),
        "the first build"
    );
    let first = file_of(&out, "css/app.css");
    assert!(
        out.join("css/app.css").is_file(),
        "watch mode also writes unhashed copies"
    );

    std::fs::write(src.join("css/app.css"), ".a { color: green }\n").unwrap();
    match next() {
        Seen::Built { changed, written } => {
            assert!(
                changed.iter().any(|p| p.ends_with("css/app.css")),
                "{changed:?}"
            );
            assert!(written > 0);
        }
        other => panic!("{other:?}"),
    }
    let second = file_of(&out, "css/app.css");
    assert_ne!(first, second);
    assert_eq!(
        std::fs::read_to_string(out.join("css/app.css")).unwrap(),
        std::fs::read_to_string(out.join(&second)).unwrap()
    );

    // A burst (like a git checkout) gives one rebuild, not one per file.
    for i in 0..20 {
        std::fs::write(
            src.join(format!("css/burst{i}.css")),
            format!(".c{i} {{ margin: {i}px }}\n"),
        )
        .unwrap();
    }
    assert!(matches!(next(), Seen::Built { .. }));
    std::thread::sleep(Duration::from_millis(500));
    let extra: Vec<Seen> = rx.try_iter().collect();
    assert!(
        extra.len() <= 1,
        "a burst of 20 files caused {} extra rebuilds: {extra:?}",
        extra.len()
    );
    assert!(
        json(&out.join("cache_manifest.json"))
            .get("css/burst19.css")
            .is_some()
    );

    // A broken file fails the build; the last good manifest stays until it is fixed.
    std::fs::write(src.join("css/other.css"), ".b {{ color: blue }\n").unwrap();
    assert!(matches!(next(), Seen::Failed(ref e) if e.contains("error")));
    assert_eq!(file_of(&out, "css/app.css"), second);
    std::fs::write(src.join("css/other.css"), ".b { color: navy }\n").unwrap();
    assert!(matches!(next(), Seen::Built { .. }));
    std::fs::remove_file(src.join("css/other.css")).unwrap();
    assert!(matches!(next(), Seen::Built { .. }));
    assert!(
        json(&out.join("cache_manifest.json"))
            .get("css/other.css")
            .is_none(),
        "a deleted file leaves the manifest"
    );

    // Editing kiln.toml is a rebuild with the new settings: here, a Django manifest appears.
    assert!(!out.join("staticfiles.json").exists());
    std::fs::write(
        &config_file,
        "[manifest]\nformats = [\"kiln\", \"flask\", \"django\"]\n",
    )
    .unwrap();
    assert!(
        matches!(next(), Seen::Built { ref changed, .. } if changed.iter().any(|p| p.ends_with("kiln.toml")))
    );
    assert!(out.join("staticfiles.json").is_file());
    // A broken kiln.toml is reported, and the watcher goes on.
    std::fs::write(&config_file, "[manifest]\nformats = [\"vite\"]\n").unwrap();
    assert!(
        matches!(next(), Seen::Failed(ref e) if e.contains("vite")),
        "a config error is reported"
    );

    stop.store(true, Ordering::Relaxed);
    handle.join().unwrap();
}
