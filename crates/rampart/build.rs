//! Link-time settings of the `rampart` binary.
//!
//! On Linux with glibc the binary is linked with packed relative relocations
//! (`-z pack-relative-relocs`, `DT_RELR`, glibc ≥ 2.36, binutils ≥ 2.38 or lld). The
//! binary stays position-independent (ASLR), but the ~57 000 relative relocations take a
//! few KiB instead of a 1.4 MB `.rela.dyn` that the loader reads, page by page, at every
//! start: that is 1.3 MiB less resident memory for an idle server (bench/README.md,
//! "Idle memory").

fn main() {
    let target_os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let target_env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if target_os == "linux" && target_env == "gnu" {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
