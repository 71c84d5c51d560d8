//! Tokenisation with the `tokenizers` crate, from a Hugging Face `tokenizer.json`.
//!
//! The padding and truncation stored in `tokenizer.json` are switched off: tunelab truncates
//! each text to `max_length` tokens (special tokens included) and pads each batch only to its
//! longest sequence, so short sentences do not pay for long ones.
use std::path::{Path, PathBuf};

use tch::{Device, Kind, Tensor};
use tokenizers::{Tokenizer, TruncationParams};

use crate::error::{Error, Result};

/// One batch of encoded texts, padded to its longest sequence.
#[derive(Debug)]
pub struct Batch {
    /// `[batch, len]`, int64.
    pub input_ids: Tensor,
    /// `[batch, len]`, int64: 1 for a token, 0 for padding.
    pub attention_mask: Tensor,
    /// `[batch, len]`, int64: 0 for the first text, 1 for the second of a pair.
    pub token_type_ids: Tensor,
}

impl Batch {
    /// Builds a batch from token id rows, padding with `pad_id`.
    pub fn from_rows(rows: &[(Vec<i64>, Vec<i64>)], pad_id: i64, device: Device) -> Batch {
        let len = rows.iter().map(|(ids, _)| ids.len()).max().unwrap_or(0);
        let n = rows.len();
        let mut ids = vec![pad_id; n * len];
        let mut mask = vec![0i64; n * len];
        let mut types = vec![0i64; n * len];
        for (r, (row_ids, row_types)) in rows.iter().enumerate() {
            let at = r * len;
            ids[at..at + row_ids.len()].copy_from_slice(row_ids);
            mask[at..at + row_ids.len()].fill(1);
            types[at..at + row_types.len()].copy_from_slice(row_types);
        }
        let shape = [n as i64, len as i64];
        let tensor = |v: &[i64]| crate::precision::to_device_async(&Tensor::from_slice(v).view(shape), device);
        Batch { input_ids: tensor(&ids), attention_mask: tensor(&mask), token_type_ids: tensor(&types) }
    }

    /// The number of sequences.
    pub fn len(&self) -> usize {
        self.input_ids.size()[0] as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The number of real (non-padding) tokens.
    pub fn tokens(&self) -> i64 {
        self.attention_mask.sum(Kind::Int64).int64_value(&[])
    }
}

/// A `tokenizer.json` with tunelab's truncation and padding.
#[derive(Clone)]
pub struct TextTokenizer {
    inner: Tokenizer,
    path: PathBuf,
    pad_id: i64,
    max_length: usize,
}

impl std::fmt::Debug for TextTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextTokenizer")
            .field("path", &self.path)
            .field("vocab_size", &self.vocab_size())
            .field("max_length", &self.max_length)
            .finish()
    }
}

impl TextTokenizer {
    /// Loads `tokenizer.json`; `pad_id` is the model's `pad_token_id`.
    pub fn from_file(path: impl AsRef<Path>, pad_id: usize, max_length: usize) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        if !path.is_file() {
            return Err(Error::Tokenizer { path, what: "file not found".into() });
        }
        let inner = Tokenizer::from_file(&path).map_err(|e| Error::Tokenizer { path: path.clone(), what: e.to_string() })?;
        let mut tok = TextTokenizer { inner, path, pad_id: pad_id as i64, max_length };
        tok.set_max_length(max_length)?;
        Ok(tok)
    }

    /// Wraps a tokenizer built in code (tests and examples).
    pub fn from_tokenizer(inner: Tokenizer, pad_id: usize, max_length: usize) -> Result<Self> {
        let mut tok = TextTokenizer { inner, path: PathBuf::from("<in memory>"), pad_id: pad_id as i64, max_length };
        tok.set_max_length(max_length)?;
        Ok(tok)
    }

    /// Sets the truncation length (special tokens included).
    pub fn set_max_length(&mut self, max_length: usize) -> Result<()> {
        if max_length < 2 {
            return Err(Error::Invalid(format!("max_length must be at least 2, got {max_length}")));
        }
        self.max_length = max_length;
        self.inner.with_padding(None);
        self.inner
            .with_truncation(Some(TruncationParams { max_length, ..Default::default() }))
            .map_err(|e| Error::Tokenizer { path: self.path.clone(), what: e.to_string() })?;
        Ok(())
    }

    pub fn max_length(&self) -> usize {
        self.max_length
    }

    pub fn pad_id(&self) -> i64 {
        self.pad_id
    }

    /// The vocabulary size, added tokens included.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// The file this tokenizer was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The underlying `tokenizers::Tokenizer`.
    pub fn inner(&self) -> &Tokenizer {
        &self.inner
    }

    /// Encodes one text, or a pair of texts, into token ids and token type ids (with special tokens).
    pub fn encode(&self, text: &str, pair: Option<&str>) -> Result<(Vec<i64>, Vec<i64>)> {
        let encoding = match pair {
            None => self.inner.encode(text, true),
            Some(second) => self.inner.encode((text, second), true),
        }
        .map_err(|e| Error::Tokenizer { path: self.path.clone(), what: e.to_string() })?;
        let ids = encoding.get_ids().iter().map(|&i| i as i64).collect();
        let types = encoding.get_type_ids().iter().map(|&i| i as i64).collect();
        Ok((ids, types))
    }

    /// Encodes texts into one batch padded to its longest sequence.
    ///
    /// ```no_run
    /// use tunelab::TextTokenizer;
    /// let tok = TextTokenizer::from_file("models/all-MiniLM-L6-v2/tokenizer.json", 0, 128)?;
    /// let batch = tok.batch(&["A gem.", "Too long by half, and not in a good way."], tch::Device::Cpu)?;
    /// assert_eq!(batch.len(), 2);
    /// # Ok::<(), tunelab::Error>(())
    /// ```
    pub fn batch(&self, texts: &[&str], device: Device) -> Result<Batch> {
        let rows = texts.iter().map(|t| self.encode(t, None)).collect::<Result<Vec<_>>>()?;
        Ok(Batch::from_rows(&rows, self.pad_id, device))
    }
}
