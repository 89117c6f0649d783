//! Binaries of this crate (tests, examples, doc tests) find liblabyrinth
//! through an rpath to the directory labyrinth-sys linked it from.
fn main() {
    if let Ok(dir) = std::env::var("DEP_LABYRINTH_LIBDIR") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
    }
}
