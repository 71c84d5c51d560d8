//! Where a run computes and in which floating-point format: the device setting (`auto`, `cpu`,
//! `cuda`, `cuda:N`), mixed precision (`fp32`, `bf16`, `fp16`) and fp16's dynamic loss scaling.
//!
//! Mixed precision works as PyTorch's autocast does for an encoder: inside [`autocast`], dense
//! layers and attention compute in the low-precision format while the weights stay fp32 (they are
//! cast on the way in, and the gradients flow back to the fp32 weights through the cast);
//! LayerNorm, the embeddings, the head's loss and everything of the optimizer (AdamW's moments,
//! the SWA average, the checkpoints) stay fp32. fp16's narrow range needs the loss scaled up
//! before the backward pass and the gradients scaled back before the step: [`LossScaler`] does
//! it with `torch.amp.GradScaler`'s rules (skip a step whose gradients overflowed and halve the
//! scale; double it after 2,000 clean steps).
use std::cell::Cell;

use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use crate::error::{Error, Result};

/// Which device trains: the first GPU when there is one (`auto`), the CPU, or a given GPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum DeviceChoice {
    #[default]
    Auto,
    Cpu,
    Cuda(usize),
}

impl std::str::FromStr for DeviceChoice {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "auto" => Ok(DeviceChoice::Auto),
            "cpu" => Ok(DeviceChoice::Cpu),
            "cuda" => Ok(DeviceChoice::Cuda(0)),
            _ => match s.strip_prefix("cuda:").map(str::parse::<usize>) {
                Some(Ok(n)) => Ok(DeviceChoice::Cuda(n)),
                _ => Err(format!("unknown device `{s}`: expected auto, cpu, cuda or cuda:N")),
            },
        }
    }
}

impl TryFrom<String> for DeviceChoice {
    type Error = String;
    fn try_from(s: String) -> std::result::Result<Self, String> {
        s.parse()
    }
}

impl From<DeviceChoice> for String {
    fn from(d: DeviceChoice) -> String {
        d.to_string()
    }
}

impl std::fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeviceChoice::Auto => write!(f, "auto"),
            DeviceChoice::Cpu => write!(f, "cpu"),
            DeviceChoice::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

impl DeviceChoice {
    /// The libtorch device, or an error that says why a GPU cannot be had: a libtorch built
    /// without CUDA, no GPU visible, or fewer GPUs than asked for.
    pub fn device(self) -> Result<Device> {
        self.device_with(tch::utils::has_cuda(), tch::Cuda::device_count().max(0) as usize)
    }

    /// [`DeviceChoice::device`] for a libtorch with or without CUDA and a number of GPUs.
    pub fn device_with(self, built_with_cuda: bool, gpus: usize) -> Result<Device> {
        match self {
            DeviceChoice::Auto if built_with_cuda && gpus > 0 => Ok(Device::Cuda(0)),
            DeviceChoice::Auto | DeviceChoice::Cpu => Ok(Device::Cpu),
            DeviceChoice::Cuda(_) if !built_with_cuda => Err(Error::Invalid(format!(
                "training.device is {self}, but this tunelab is linked against a CPU-only libtorch: \
                 run `make setup-cuda` (torch with its CUDA libraries), rebuild, and run it on a machine with a GPU"
            ))),
            DeviceChoice::Cuda(_) if gpus == 0 => Err(Error::Invalid(format!(
                "training.device is {self}, but no CUDA GPU is visible on this machine (check nvidia-smi and CUDA_VISIBLE_DEVICES), or use device auto or cpu"
            ))),
            DeviceChoice::Cuda(n) if n >= gpus => Err(Error::Invalid(format!("training.device is {self}, but this machine has {gpus} GPU(s): cuda:0 to cuda:{}", gpus - 1))),
            DeviceChoice::Cuda(n) => Ok(Device::Cuda(n)),
        }
    }
}

/// A device and precision chosen for one process (`--device`, `--precision`), overriding what
/// the specifications say; the runs record what they used.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Hardware {
    pub device: Option<DeviceChoice>,
    pub precision: Option<Precision>,
}

/// The format that dense layers and attention compute in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum Precision {
    #[default]
    Fp32,
    /// bfloat16: fp32's range with 8 bits of mantissa; needs no loss scaling.
    Bf16,
    /// float16: 11 bits of mantissa but a narrow range: trained with dynamic loss scaling.
    Fp16,
}

impl Precision {
    /// The low-precision kind, `None` for fp32.
    pub fn kind(self) -> Option<Kind> {
        match self {
            Precision::Fp32 => None,
            Precision::Bf16 => Some(Kind::BFloat16),
            Precision::Fp16 => Some(Kind::Half),
        }
    }
}

thread_local! {
    static COMPUTE: Cell<Option<Kind>> = const { Cell::new(None) };
}

/// Runs `f` with dense layers and attention computing in `precision` (on this thread), as
/// `torch.autocast` does; fp32 leaves everything as it is. Regions nest and restore the format
/// they found.
pub fn autocast<T>(precision: Precision, f: impl FnOnce() -> T) -> T {
    let before = COMPUTE.with(|c| c.replace(precision.kind()));
    struct Restore(Option<Kind>);
    impl Drop for Restore {
        fn drop(&mut self) {
            COMPUTE.with(|c| c.set(self.0));
        }
    }
    let _restore = Restore(before);
    f()
}

/// The format of the current [`autocast`] region (`None`: fp32).
pub fn compute_kind() -> Option<Kind> {
    COMPUTE.with(Cell::get)
}

/// `x W^T + b` in the current format: the inputs and the fp32 weights cast to it.
pub fn linear(xs: &Tensor, weight: &Tensor, bias: &Tensor) -> Tensor {
    match compute_kind() {
        None => xs.linear(weight, Some(bias)),
        Some(k) => xs.to_kind(k).linear(&weight.to_kind(k), Some(&bias.to_kind(k))),
    }
}

/// Inputs of ops that autocast keeps in fp32 (LayerNorm, losses).
pub fn to_fp32(xs: &Tensor) -> Tensor {
    if xs.kind() == Kind::Float { xs.shallow_clone() } else { xs.to_kind(Kind::Float) }
}

/// Dynamic loss scaling for fp16, with `torch.amp.GradScaler`'s defaults and rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LossScaler {
    /// The factor the loss is multiplied by before the backward pass.
    pub scale: f64,
    /// Clean steps since the scale last changed.
    pub growth_tracker: usize,
    pub growth_factor: f64,
    pub backoff_factor: f64,
    pub growth_interval: usize,
    /// Steps skipped because their gradients overflowed, in the whole run.
    #[serde(default)]
    pub skipped: usize,
}

impl Default for LossScaler {
    fn default() -> Self {
        LossScaler { scale: 65536.0, growth_tracker: 0, growth_factor: 2.0, backoff_factor: 0.5, growth_interval: 2000, skipped: 0 }
    }
}

impl LossScaler {
    /// Divides every gradient by the scale, in place, and tells whether any is inf or NaN (the
    /// step must then be skipped).
    pub fn unscale(&self, params: &[Tensor]) -> bool {
        let inverse = 1.0 / self.scale;
        tch::no_grad(|| {
            // One flag per gradient on the device, then a single read: one host synchronisation.
            let flags: Vec<Tensor> = params
                .iter()
                .map(|p| p.grad())
                .filter(Tensor::defined)
                .map(|mut g| {
                    let _ = g.g_mul_scalar_(inverse);
                    g.isfinite().all().logical_not()
                })
                .collect();
            !flags.is_empty() && bool::try_from(Tensor::stack(&flags, 0).any()).unwrap_or(true)
        })
    }

    /// The scale for the next step, after a step whose gradients did (or did not) overflow.
    pub fn update(&mut self, found_inf: bool) {
        if found_inf {
            self.scale *= self.backoff_factor;
            self.growth_tracker = 0;
            self.skipped += 1;
        } else {
            self.growth_tracker += 1;
            if self.growth_tracker == self.growth_interval {
                self.scale *= self.growth_factor;
                self.growth_tracker = 0;
            }
        }
    }
}

/// Copies a host tensor to `device`. To a GPU the copy goes through page-locked (pinned)
/// memory and does not block the host (PyTorch's `pin_memory=True` with
/// `.to(device, non_blocking=True)`): the host goes on preparing while the copy waits its turn
/// on the GPU's stream. (`_pin_memory`, not `pin_memory`: tch passes the latter a device
/// argument, which libtorch 2.11 answers with a deprecation warning on every call.)
pub fn to_device_async(t: &Tensor, device: Device) -> Tensor {
    if device.is_cuda() { t.internal_pin_memory(device).to_device_(device, t.kind(), true, false) } else { t.to_device(device) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_parse_print_and_explain_what_is_missing() {
        for s in ["auto", "cpu", "cuda:0", "cuda:3"] {
            assert_eq!(s.parse::<DeviceChoice>().unwrap().to_string(), s);
        }
        assert_eq!("cuda".parse::<DeviceChoice>().unwrap(), DeviceChoice::Cuda(0));
        assert!("gpu".parse::<DeviceChoice>().unwrap_err().contains("auto, cpu, cuda or cuda:N"));
        assert!("cuda:x".parse::<DeviceChoice>().is_err());
        assert_eq!(DeviceChoice::Auto.device_with(false, 0).unwrap(), Device::Cpu);
        assert_eq!(DeviceChoice::Auto.device_with(true, 2).unwrap(), Device::Cuda(0));
        assert_eq!(DeviceChoice::Cuda(1).device_with(true, 2).unwrap(), Device::Cuda(1));
        let e = DeviceChoice::Cuda(0).device_with(false, 0).unwrap_err().to_string();
        assert!(e.contains("CPU-only libtorch") && e.contains("make setup-cuda"), "{e}");
        let e = DeviceChoice::Cuda(0).device_with(true, 0).unwrap_err().to_string();
        assert!(e.contains("no CUDA GPU is visible"), "{e}");
        let e = DeviceChoice::Cuda(2).device_with(true, 2).unwrap_err().to_string();
        assert!(e.contains("has 2 GPU(s)"), "{e}");
        // This machine's libtorch: the CPU one in CI.
        if !tch::utils::has_cuda() {
            assert!(DeviceChoice::Cuda(0).device().is_err());
            assert_eq!(DeviceChoice::Auto.device().unwrap(), Device::Cpu);
        }
    }

    #[test]
    fn autocast_regions_nest_and_restore() {
        assert_eq!(compute_kind(), None);
        autocast(Precision::Bf16, || {
            assert_eq!(compute_kind(), Some(Kind::BFloat16));
            autocast(Precision::Fp32, || assert_eq!(compute_kind(), None));
            assert_eq!(compute_kind(), Some(Kind::BFloat16));
        });
        assert_eq!(compute_kind(), None);
    }
}
