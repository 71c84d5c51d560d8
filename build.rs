//! Makes binaries, tests and examples find libtorch without `LD_LIBRARY_PATH`.
//!
//! torch-sys tells us where libtorch lives (`DEP_TCH_LIBTORCH_LIB`, through its `links`
//! key). We add that folder, and the folder of the CUDA runtime wheels next to it, as an
//! rpath. `--disable-new-dtags` writes DT_RPATH rather than DT_RUNPATH, so libtorch's own
//! dependencies (libcudart, libcupti) are found through it as well.
//!
//! When the full CUDA wheels are installed (`make setup-cuda`), `libtorch_cuda.so` is linked
//! with `--no-as-needed`, so the same binary runs on a GPU when one exists.
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=TUNELAB_CUDA");
    let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") else {
        return;
    };
    let lib = PathBuf::from(lib);
    let lib = lib.canonicalize().unwrap_or(lib);
    let mut rpaths = vec![lib.clone()];
    // site-packages/torch/lib -> site-packages/nvidia/cu13/lib
    if let Some(site) = lib.parent().and_then(|torch| torch.parent()) {
        let nvidia = site.join("nvidia");
        if let Ok(entries) = std::fs::read_dir(&nvidia) {
            for entry in entries.flatten() {
                let dir = entry.path().join("lib");
                if dir.is_dir() {
                    rpaths.push(dir);
                }
            }
        }
    }
    println!("cargo:rustc-link-arg=-Wl,--disable-new-dtags");
    for dir in &rpaths {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{}", dir.display());
    }
    let cuda_libs_present = rpaths.iter().any(|d| d.join("libcublas.so.13").exists());
    let forced = std::env::var("TUNELAB_CUDA").map(|v| v == "1").unwrap_or(false);
    if lib.join("libtorch_cuda.so").exists() && (cuda_libs_present || forced) {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed,-ltorch_cuda,--as-needed");
    }
}
