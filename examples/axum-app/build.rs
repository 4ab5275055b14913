//! Builds `assets/` with kiln into OUT_DIR and generates `assets.rs` (typed handles and the
//! table the server serves from). The files are embedded in release builds.

fn main() {
    // The tests point the example at a copy of its configuration (to edit it and its assets);
    // an application would simply name its file.
    println!("cargo:rerun-if-env-changed=KILN_EXAMPLE_CONFIG");
    let config = std::env::var("KILN_EXAMPLE_CONFIG").unwrap_or_else(|_| "kiln.toml".to_owned());
    kiln::cargo::Assets::from_config_file(config).emit();
}
