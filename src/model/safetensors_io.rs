//! Reading and writing `.safetensors` files with the `safetensors` crate.
//!
//! Reading maps the file and copies each tensor into libtorch; half-precision checkpoints are
//! accepted (and converted when copied into float32 variables). Writing stores float32 with
//! the `{"format": "pt"}` metadata transformers expects, through a temporary file and a rename,
//! streaming each tensor from its own memory.
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use safetensors::{Dtype, SafeTensors, View};
use tch::{Kind, Tensor};

use crate::error::{Error, Result};

fn kind_of(dtype: Dtype) -> Option<Kind> {
    Some(match dtype {
        Dtype::F64 => Kind::Double,
        Dtype::F32 => Kind::Float,
        Dtype::F16 => Kind::Half,
        Dtype::BF16 => Kind::BFloat16,
        Dtype::I64 => Kind::Int64,
        Dtype::I32 => Kind::Int,
        Dtype::I16 => Kind::Int16,
        Dtype::I8 => Kind::Int8,
        Dtype::U8 => Kind::Uint8,
        Dtype::BOOL => Kind::Bool,
        _ => return None,
    })
}

/// Reads every tensor of a `.safetensors` file, by name.
pub fn read_safetensors(path: &Path) -> Result<HashMap<String, Tensor>> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    // SAFETY: the map is read-only and dropped before this function returns; the tensors are copies.
    let mmap = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
    let st = SafeTensors::deserialize(&mmap).map_err(|e| Error::checkpoint(path, format!("not a safetensors file: {e}")))?;
    let mut out = HashMap::new();
    for (name, view) in st.tensors() {
        let kind = kind_of(view.dtype())
            .ok_or_else(|| Error::checkpoint(path, format!("tensor `{name}` has unsupported dtype {:?}", view.dtype())))?;
        let shape: Vec<i64> = view.shape().iter().map(|&d| d as i64).collect();
        let tensor = Tensor::f_from_data_size(view.data(), &shape, kind)
            .map_err(|e| Error::checkpoint(path, format!("tensor `{name}`: {e}")))?;
        out.insert(name, tensor);
    }
    Ok(out)
}

/// One float32 tensor ready to be serialised: contiguous, on the CPU, written from its own memory.
struct Float32 {
    tensor: Tensor,
    shape: Vec<usize>,
    len: usize,
}

impl View for &Float32 {
    fn dtype(&self) -> Dtype {
        Dtype::F32
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> std::borrow::Cow<'_, [u8]> {
        if self.len == 0 {
            return std::borrow::Cow::Borrowed(&[]);
        }
        // SAFETY: `tensor` is a contiguous float32 CPU tensor of `len` bytes (checked when it
        // was made), its handle keeps the storage alive for as long as this borrow, and nothing
        // writes to it while the file is written (the training loop waits for the save).
        // libtorch stores little-endian float32 on every platform tunelab runs on.
        std::borrow::Cow::Borrowed(unsafe { std::slice::from_raw_parts(self.tensor.data_ptr() as *const u8, self.len) })
    }
    fn data_len(&self) -> usize {
        self.len
    }
}

/// Writes tensors as float32 to `path`, atomically. Float32 CPU tensors are written from their
/// own memory, not copied first: saving a checkpoint does not double the memory it takes. No
/// other thread may write to these tensors while the call runs.
pub fn write_safetensors(path: &Path, tensors: &[(String, Tensor)]) -> Result<()> {
    let mut views = BTreeMap::new();
    for (name, t) in tensors {
        let tensor = t.detach().to_device(tch::Device::Cpu).to_kind(Kind::Float).contiguous();
        assert!(tensor.is_contiguous() && tensor.kind() == Kind::Float && tensor.device() == tch::Device::Cpu);
        let shape = tensor.size().iter().map(|&d| d as usize).collect();
        let len = tensor.numel() * 4;
        views.insert(name.clone(), Float32 { tensor, shape, len });
    }
    let metadata = Some(HashMap::from([("format".to_string(), "pt".to_string())]));
    crate::files::write_via_temp(path, |tmp| {
        safetensors::serialize_to_file(views.iter().map(|(k, v)| (k.clone(), v)), metadata, tmp).map_err(|e| Error::checkpoint(tmp, e.to_string()))
    })
}
