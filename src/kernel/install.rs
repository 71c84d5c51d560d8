//! The kernelspec: `kernel.json` and two logos, in the folder `jupyter kernelspec install`
//! would use for the same flag.
use std::path::{Path, PathBuf};

use plotters::prelude::*;
use serde_json::json;

use crate::error::{Error, Result};
use crate::files::atomic_write;

/// Where a kernelspec goes.
#[derive(Debug, Clone, PartialEq)]
pub enum Destination {
    /// `$JUPYTER_DATA_DIR/kernels`, else `$XDG_DATA_HOME/jupyter/kernels`, else
    /// `~/.local/share/jupyter/kernels` (`--user`).
    User,
    /// `PREFIX/share/jupyter/kernels` (`--prefix PREFIX`).
    Prefix(PathBuf),
    /// The prefix of the active Python environment: `$VIRTUAL_ENV`, else `$CONDA_PREFIX`
    /// (`--sys-prefix`).
    SysPrefix,
}

impl Destination {
    /// The `kernels` folder of the destination.
    pub fn kernels_dir(&self) -> Result<PathBuf> {
        let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
        Ok(match self {
            Destination::User => match (var("JUPYTER_DATA_DIR"), var("XDG_DATA_HOME"), var("HOME")) {
                (Some(dir), _, _) => dir.join("kernels"),
                (None, Some(xdg), _) => xdg.join("jupyter/kernels"),
                (None, None, Some(home)) => home.join(".local/share/jupyter/kernels"),
                _ => return Err(Error::Invalid("kernel --install --user: neither JUPYTER_DATA_DIR, XDG_DATA_HOME nor HOME is set".into())),
            },
            Destination::Prefix(prefix) => prefix.join("share/jupyter/kernels"),
            Destination::SysPrefix => match var("VIRTUAL_ENV").or_else(|| var("CONDA_PREFIX")) {
                Some(prefix) => prefix.join("share/jupyter/kernels"),
                None => {
                    return Err(Error::Invalid(
                        "kernel --install --sys-prefix: no Python environment is active (VIRTUAL_ENV and CONDA_PREFIX are unset); activate it, or give --prefix .venv".into(),
                    ));
                }
            },
        })
    }
}

/// `kernel.json` for the binary at `exe`. No `env`: the binary finds libtorch through the run
/// path build.rs writes (the very binary that is running now, so it loads).
pub fn kernel_json(exe: &Path) -> serde_json::Value {
    json!({
        "argv": [exe.display().to_string(), "kernel", "--connection-file", "{connection_file}"],
        "display_name": "tunelab (rhai)",
        "language": "rhai",
        "interrupt_mode": "message",
        "metadata": { "debugger": false },
    })
}

/// Writes the kernelspec `name` into the destination and returns its folder.
pub fn install(destination: &Destination, name: &str) -> Result<PathBuf> {
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || "-._".contains(c)) {
        return Err(Error::Invalid(format!("kernel --name {name}: a kernel name is made of letters, digits, `-`, `.` and `_`")));
    }
    let exe = std::env::current_exe().and_then(|p| p.canonicalize()).map_err(|e| Error::io("the tunelab binary", e))?;
    let dir = destination.kernels_dir()?.join(name);
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    let spec = serde_json::to_string_pretty(&kernel_json(&exe)).unwrap_or_default();
    atomic_write(&dir.join("kernel.json"), spec.as_bytes())?;
    for size in [32, 64] {
        atomic_write(&dir.join(format!("logo-{size}x{size}.png")), &logo(size)?)?;
    }
    Ok(dir)
}

/// The logo: an LR schedule (warm-up, then decay) on a dark square, as PNG.
pub fn logo(size: u32) -> Result<Vec<u8>> {
    let mut rgb = vec![0u8; (size * size * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (size, size)).into_drawing_area();
        let s = size as i32;
        let f = |x: f64, y: f64| ((x * s as f64) as i32, (y * s as f64) as i32);
        let drawn = root
            .fill(&RGBColor(30, 41, 59))
            .and_then(|_| {
                let width = (size / 16).max(2);
                let warmup = [f(0.12, 0.82), f(0.34, 0.2)];
                let decay: Vec<(i32, i32)> = (0..=20).map(|i| i as f64 / 20.0).map(|t| f(0.34 + 0.54 * t, 0.2 + 0.62 * t * t.sqrt())).collect();
                root.draw(&PathElement::new(warmup.to_vec(), RGBColor(255, 127, 14).stroke_width(width)))?;
                root.draw(&PathElement::new(decay, RGBColor(31, 119, 180).stroke_width(width)))?;
                root.draw(&PathElement::new(vec![f(0.1, 0.88), f(0.9, 0.88)], RGBColor(203, 213, 225).stroke_width((width / 2).max(1))))
            })
            .and_then(|_| root.present());
        drawn.map_err(|e| Error::Invalid(format!("the kernel logo: {e}")))?;
    }
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, size, size);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let written = encoder.write_header().and_then(|mut w| w.write_image_data(&rgb).and_then(|_| w.finish()));
    written.map_err(|e| Error::Invalid(format!("the kernel logo: {e}")))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_follow_jupyter() {
        assert_eq!(Destination::Prefix("/p".into()).kernels_dir().unwrap(), PathBuf::from("/p/share/jupyter/kernels"));
        let spec = kernel_json(Path::new("/bin/tunelab"));
        assert_eq!(spec["argv"], json!(["/bin/tunelab", "kernel", "--connection-file", "{connection_file}"]));
        assert_eq!((spec["language"].as_str(), spec["interrupt_mode"].as_str()), (Some("rhai"), Some("message")));
        assert_eq!(&logo(32).unwrap()[..4], b"\x89PNG");
    }
}
