"""Golden values for tunelab's MPNet encoder, produced by PyTorch and transformers.

Run with `make reference-mpnet` (after `make setup-mpnet`; it uses `.venv-ref`). Writes into
tests/fixtures/:

- tiny_mpnet/ and tiny_mpnet.safetensors: a tiny random MPNetModel as transformers saves it,
  with the word-level tokenizer of the tiny RoBERTa; inputs of 30 tokens (so that relative
  distances reach the log-scaled buckets), outputs, and the gradients of a scalar loss with
  respect to named parameters (the relative position bias among them).
- mpnet_buckets.safetensors: transformers' `relative_position_bucket` for every relative
  distance from -300 to 300.
- mpnet.safetensors / mpnet.json: the real all-mpnet-base-v2 on the 5 real VADER sentences of
  minilm.json in one padded batch: transformers' token ids, attention mask, last hidden state
  and pooler output.
"""

import json
import pathlib

import torch
from safetensors.torch import save_file
from transformers import AutoModel, AutoTokenizer, MPNetConfig, MPNetModel
from transformers.models.mpnet.modeling_mpnet import MPNetEncoder

from encoder_fixtures import FIXTURES, ROOT, SENTENCES, word_tokenizer

MPNET = ROOT / "models" / "all-mpnet-base-v2"

GRAD_PARAMS = [
    "embeddings.word_embeddings.weight",
    "embeddings.position_embeddings.weight",
    "embeddings.LayerNorm.weight",
    "encoder.relative_attention_bias.weight",
    "encoder.layer.0.attention.attn.q.weight",
    "encoder.layer.0.attention.attn.o.bias",
    "encoder.layer.1.attention.LayerNorm.weight",
    "encoder.layer.1.intermediate.dense.weight",
    "encoder.layer.1.output.LayerNorm.bias",
    "pooler.dense.weight",
]


def tiny_mpnet():
    torch.manual_seed(0)
    cfg = MPNetConfig(
        vocab_size=99,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=48,
        max_position_embeddings=40,
        hidden_act="gelu",
        pad_token_id=1,
    )
    model = MPNetModel(cfg)
    # transformers initialises the relative bias with std 0.02: too small to notice a wrong
    # bucket in the outputs, so the fixture draws it larger.
    with torch.no_grad():
        model.encoder.relative_attention_bias.weight.normal_(0.0, 1.0)
    model.save_pretrained(FIXTURES / "tiny_mpnet")
    tok = word_tokenizer(["<s>", "<pad>", "</s>", "<unk>"], "<s>", "</s>", "<pad>", "<unk>")
    tok.save(str(FIXTURES / "tiny_mpnet" / "tokenizer.json"))

    model.eval()
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(3, cfg.vocab_size, (3, 30), generator=g)
    mask = torch.ones(3, 30, dtype=torch.long)
    mask[1, 20:] = 0
    mask[2, 11:] = 0
    ids[mask == 0] = 1
    out = model(input_ids=ids, attention_mask=mask)
    g = torch.Generator().manual_seed(2)
    w_hidden = torch.randn(out.last_hidden_state.shape, generator=g)
    w_pooled = torch.randn(out.pooler_output.shape, generator=g)
    loss = (out.last_hidden_state * w_hidden).sum() + (out.pooler_output * w_pooled).sum()
    loss.backward()
    params = dict(model.named_parameters())
    tensors = {
        "input_ids": ids,
        "attention_mask": mask,
        "token_type_ids": torch.zeros_like(ids),
        "last_hidden_state": out.last_hidden_state.detach(),
        "pooler_output": out.pooler_output.detach(),
        "w_hidden": w_hidden,
        "w_pooled": w_pooled,
        "loss": loss.detach().reshape(1),
    }
    for p in GRAD_PARAMS:
        tensors["grad." + p] = params[p].grad
    save_file({k: v.contiguous() for k, v in tensors.items()}, FIXTURES / "tiny_mpnet.safetensors")


def buckets():
    relative = torch.arange(-300, 301)
    save_file(
        {"relative": relative, "bucket": MPNetEncoder.relative_position_bucket(relative)},
        FIXTURES / "mpnet_buckets.safetensors",
    )


def mpnet():
    tok = AutoTokenizer.from_pretrained(MPNET)
    model = AutoModel.from_pretrained(MPNET).eval()
    enc = tok(SENTENCES, padding="longest", truncation=True, max_length=128, return_tensors="pt")
    with torch.no_grad():
        out = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"])
    save_file(
        {
            "input_ids": enc["input_ids"].contiguous(),
            "attention_mask": enc["attention_mask"].contiguous(),
            "last_hidden_state": out.last_hidden_state.contiguous(),
            "pooler_output": out.pooler_output.contiguous(),
        },
        FIXTURES / "mpnet.safetensors",
    )
    (FIXTURES / "mpnet.json").write_text(json.dumps({"sentences": SENTENCES, "max_length": 128}, indent=2) + "\n")


if __name__ == "__main__":
    torch.set_num_threads(1)
    tiny_mpnet()
    buckets()
    mpnet()
    print(f"wrote MPNet fixtures to {FIXTURES}")
