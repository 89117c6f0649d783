//! Finds liblabyrinth: $LABYRINTH_LIB_DIR if set, else the CMake build tree of
//! this repository (<repo>/build/cpp, or $BUILD_DIR/cpp relative to the repo).
//! Binaries built here get an rpath to that directory, so tests run without
//! LD_LIBRARY_PATH.
use std::env;
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-env-changed=LABYRINTH_LIB_DIR");
    println!("cargo:rerun-if-env-changed=BUILD_DIR");
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let repo = manifest.join("../../..");
    let dir = match env::var("LABYRINTH_LIB_DIR") {
        Ok(d) => PathBuf::from(d),
        Err(_) => {
            let build = env::var("BUILD_DIR").unwrap_or_else(|_| "build".into());
            let b = PathBuf::from(&build);
            if b.is_absolute() { b.join("cpp") } else { repo.join(build).join("cpp") }
        }
    };
    let dir = dir.canonicalize().unwrap_or(dir);
    if !dir.join("liblabyrinth.so").exists() {
        println!(
            "cargo:warning=liblabyrinth.so not found in {} (build the C library first: \
             bash scripts/build.sh, or set LABYRINTH_LIB_DIR)",
            dir.display()
        );
    }
    println!("cargo:rustc-link-search=native={}", dir.display());
    println!("cargo:rustc-link-lib=dylib=labyrinth");
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", dir.display());
    // For dependents (DEP_LABYRINTH_LIBDIR): their binaries need the rpath too.
    println!("cargo:libdir={}", dir.display());
    // Where the header is, for the layout test.
    println!("cargo:rustc-env=LABYRINTH_INCLUDE_DIR={}", repo.join("cpp/include").canonicalize().unwrap_or(repo.join("cpp/include")).display());
    println!("cargo:include={}", repo.join("cpp/include").display());
}
