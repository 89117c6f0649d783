//! Finds or builds liblabyrinth, in this order:
//! 1. `$LABYRINTH_LIB_DIR`: the shared library in that directory (this
//!    repository's CI points it at the CMake build tree, `build/cpp`), with
//!    an rpath to it for this package's binaries; dependents get the
//!    directory as `DEP_LABYRINTH_LIBDIR` for their own binaries' rpath
//!    (Cargo passes no link argument on to other packages);
//! 2. an installed Labyrinth found by `pkg-config labyrinth` (set
//!    `PKG_CONFIG_PATH` for a non-system prefix): its static liblabyrinth.a;
//! 3. otherwise the C++ core of this repository, built with cmake into
//!    `OUT_DIR`, linked statically.
//!
//! Linked statically, the library brings liburing (shared), libstdc++ and
//! pthread with it, and any crate's binaries run without LD_LIBRARY_PATH.
use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=LABYRINTH_LIB_DIR");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let repo = manifest.join("../../..");
    let repo = repo.canonicalize().unwrap_or(repo);
    let include = repo.join("cpp/include");
    // Where the header is, for the layout test.
    println!("cargo:rustc-env=LABYRINTH_INCLUDE_DIR={}", include.display());
    println!("cargo:include={}", include.display());

    if let Ok(d) = env::var("LABYRINTH_LIB_DIR") {
        let dir = PathBuf::from(&d);
        let dir = dir.canonicalize().unwrap_or(dir);
        if !dir.join("liblabyrinth.so").exists() {
            panic!("LABYRINTH_LIB_DIR={d} has no liblabyrinth.so (build the C library first: bash scripts/build.sh)");
        }
        link_shared(&dir);
    } else if let Some(dir) = pkg_config_libdir() {
        link_static(&dir);
    } else {
        build_static(&repo);
    }
}

fn link_shared(dir: &Path) {
    println!("cargo:rustc-link-search=native={}", dir.display());
    println!("cargo:rustc-link-lib=dylib=labyrinth");
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", dir.display());
    println!("cargo:libdir={}", dir.display());
}

fn link_static(dir: &Path) {
    println!("cargo:rustc-link-search=native={}", dir.display());
    println!("cargo:rustc-link-lib=static=labyrinth");
    // The core always has io_uring support (cmake refuses to build without liburing).
    println!("cargo:rustc-link-lib=dylib=uring");
    println!("cargo:rustc-link-lib=dylib=stdc++");
    println!("cargo:rustc-link-lib=dylib=pthread");
}

/// The installed library's directory according to pkg-config, if it has liblabyrinth.a.
fn pkg_config_libdir() -> Option<PathBuf> {
    let out = Command::new("pkg-config")
        .args(["--variable=libdir", "labyrinth"])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    let dir = dir.canonicalize().ok()?;
    dir.join("liblabyrinth.a").exists().then_some(dir)
}

fn run(cmd: &mut Command) {
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e} (building the Labyrinth core needs cmake and a C++ compiler)"));
    if !status.success() {
        panic!("{cmd:?} failed ({status}); install liburing-dev, cmake and a C++ compiler, or install Labyrinth and set PKG_CONFIG_PATH");
    }
}

/// Builds liblabyrinth.a from this repository's sources and links it.
fn build_static(repo: &Path) {
    for dir in ["cpp/src", "cpp/include", "cpp/CMakeLists.txt", "CMakeLists.txt", "cmake"] {
        println!("cargo:rerun-if-changed={}", repo.join(dir).display());
    }
    let build = PathBuf::from(env::var("OUT_DIR").unwrap()).join("labyrinth-build");
    let jobs = env::var("NUM_JOBS").unwrap_or_else(|_| "2".into());
    run(Command::new("cmake").arg("-S").arg(repo).arg("-B").arg(&build).args([
        "-DCMAKE_BUILD_TYPE=Release",
        "-DLABYRINTH_BUILD_TESTS=OFF",
        "-DLABYRINTH_BUILD_EXAMPLES=OFF",
        "-DLABYRINTH_BUILD_BENCH=OFF",
        "--no-warn-unused-cli",
    ]));
    run(Command::new("cmake")
        .arg("--build")
        .arg(&build)
        .args(["--target", "labyrinth_static", "-j", &jobs]));
    link_static(&build.join("cpp"));
}
