"""Golden values for tunelab's encoder, produced by PyTorch and transformers.

Run with `make reference` (it creates `.venv-ref` with torch==2.11.0 and transformers 4.57
and builds the tunelab example this script calls). Writes into tests/fixtures/:

- minilm.safetensors: the real all-MiniLM-L6-v2 on 5 real VADER movie sentences in one padded
  batch: transformers' token ids, attention mask, last hidden state and pooler output.
- tiny_bert/ and tiny_roberta/: tiny random models as transformers saves them (the BERT one
  from BertForSequenceClassification, so its tensors carry the `bert.` prefix) with a
  word-level tokenizer.json over 90 frequent words of the VADER sentences, and
  tiny_bert.safetensors / tiny_roberta.safetensors: inputs, outputs, and the gradients of a
  scalar loss with respect to named parameters.
- saved_by_tunelab.safetensors: a tiny model initialised and saved by tunelab
  (`cargo run --example save_tiny`), loaded back with AutoModel.from_pretrained (which must
  report no missing or unexpected keys), and its outputs on fixed inputs.
"""

import json
import pathlib
import subprocess
import sys
import tempfile

import torch
from safetensors.torch import save_file
from transformers import (
    AutoModel,
    AutoTokenizer,
    BertConfig,
    BertForSequenceClassification,
    RobertaConfig,
    RobertaModel,
)

ROOT = pathlib.Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
MINILM = ROOT / "models" / "all-MiniLM-L6-v2"

# Five real sentences from movieReviewSnippets_GroundTruth.txt (ids 3, 18, 7, 5, 1), of
# different lengths, so that the batch has real padding.
SENTENCES = [
    "Effective but too tepid biopic",
    "A masterpiece four years in the making.",
    "Offers that rare combination of entertainment and education.",
    "Emerges as something rare, an issue movie that's so honest and keenly observed that it doesn't feel like one.",
    "The Rock is destined to be the 21st Century's new ''Conan'' and that he's going to make a splash even greater than Arnold Schwarzenegger, Jean Claud Van Damme or Steven Segal.",
]

GRAD_PARAMS = [
    "embeddings.word_embeddings.weight",
    "embeddings.LayerNorm.weight",
    "encoder.layer.0.attention.self.query.weight",
    "encoder.layer.0.attention.output.dense.bias",
    "encoder.layer.1.intermediate.dense.weight",
    "encoder.layer.1.output.LayerNorm.bias",
    "pooler.dense.weight",
]


def minilm():
    tok = AutoTokenizer.from_pretrained(MINILM)
    model = AutoModel.from_pretrained(MINILM, attn_implementation="sdpa").eval()
    enc = tok(SENTENCES, padding="longest", truncation=True, max_length=128, return_tensors="pt")
    with torch.no_grad():
        out = model(**enc)
    save_file(
        {
            "input_ids": enc["input_ids"].contiguous(),
            "attention_mask": enc["attention_mask"].contiguous(),
            "token_type_ids": enc["token_type_ids"].contiguous(),
            "last_hidden_state": out.last_hidden_state.contiguous(),
            "pooler_output": out.pooler_output.contiguous(),
        },
        FIXTURES / "minilm.safetensors",
    )
    (FIXTURES / "minilm.json").write_text(json.dumps({"sentences": SENTENCES, "max_length": 128}, indent=2) + "\n")


def inputs(vocab, pad, first_id):
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(first_id, vocab, (3, 9), generator=g)
    mask = torch.ones(3, 9, dtype=torch.long)
    mask[1, 6:] = 0
    mask[2, 4:] = 0
    ids[mask == 0] = pad
    types = torch.zeros(3, 9, dtype=torch.long)
    return ids, mask, types


def golden(encoder, name, pad, first_id, prefix=""):
    encoder.eval()
    cfg = encoder.config
    ids, mask, types = inputs(cfg.vocab_size, pad, first_id)
    if cfg.type_vocab_size > 1:
        types[0, 5:] = 1
    out = encoder(input_ids=ids, attention_mask=mask, token_type_ids=types)
    g = torch.Generator().manual_seed(2)
    w_hidden = torch.randn(out.last_hidden_state.shape, generator=g)
    w_pooled = torch.randn(out.pooler_output.shape, generator=g)
    loss = (out.last_hidden_state * w_hidden).sum() + (out.pooler_output * w_pooled).sum()
    loss.backward()
    params = dict(encoder.named_parameters())
    tensors = {
        "input_ids": ids,
        "attention_mask": mask,
        "token_type_ids": types,
        "last_hidden_state": out.last_hidden_state.detach(),
        "pooler_output": out.pooler_output.detach(),
        "w_hidden": w_hidden,
        "w_pooled": w_pooled,
        "loss": loss.detach().reshape(1),
    }
    for p in GRAD_PARAMS:
        tensors["grad." + p] = params[p].grad
    save_file({k: v.contiguous() for k, v in tensors.items()}, FIXTURES / f"{name}.safetensors")


# The 90 most frequent words of the VADER movie sentences, for the tiny models' tokenizers.
WORDS = (
    "the a and of to s it is in that as but film with for this movie its an you t be on not by one "
    "like about more has are at than from all his have i so if or story what too there can who out "
    "just up good into most no much even comedy time will some characters well he director only "
    "little way funny their make they been your enough we very never when life makes bad may best "
    "which us work love doesn would any"
).split()


def word_tokenizer(specials, cls, sep, pad, unk):
    """A word-level tokenizer (lower-cased, split on non-letters) with BERT-style special tokens."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

    vocab = {t: i for i, t in enumerate(specials + WORDS)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token=unk))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Whitespace(), pre_tokenizers.Punctuation()])
    tok.post_processor = processors.TemplateProcessing(
        single=f"{cls} $A {sep}",
        pair=f"{cls} $A {sep} $B:1 {sep}:1",
        special_tokens=[(cls, vocab[cls]), (sep, vocab[sep])],
    )
    return tok


def tiny_bert():
    torch.manual_seed(0)
    cfg = BertConfig(
        vocab_size=100,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=64,
        hidden_act="gelu",
        num_labels=1,
    )
    model = BertForSequenceClassification(cfg)
    model.save_pretrained(FIXTURES / "tiny_bert")
    tok = word_tokenizer(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"], "[CLS]", "[SEP]", "[PAD]", "[UNK]")
    tok.save(str(FIXTURES / "tiny_bert" / "tokenizer.json"))
    golden(model.bert, "tiny_bert", pad=0, first_id=1)


def tiny_roberta():
    torch.manual_seed(0)
    cfg = RobertaConfig(
        vocab_size=99,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=48,
        max_position_embeddings=40,
        type_vocab_size=1,
        hidden_act="gelu_new",
        pad_token_id=1,
    )
    model = RobertaModel(cfg)
    model.save_pretrained(FIXTURES / "tiny_roberta")
    tok = word_tokenizer(["<s>", "<pad>", "</s>", "<unk>"], "<s>", "</s>", "<pad>", "<unk>")
    tok.save(str(FIXTURES / "tiny_roberta" / "tokenizer.json"))
    golden(model, "tiny_roberta", pad=1, first_id=3)


def saved_by_tunelab():
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            ["cargo", "run", "--quiet", "--example", "save_tiny", "--", tmp],
            cwd=ROOT,
            check=True,
        )
        model, info = AutoModel.from_pretrained(tmp, output_loading_info=True)
        bad = {k: v for k, v in info.items() if v}
        if bad:
            sys.exit(f"transformers did not load tunelab's checkpoint cleanly: {bad}")
        model.eval()
        ids, mask, types = inputs(model.config.vocab_size, 0, 1)
        with torch.no_grad():
            out = model(input_ids=ids, attention_mask=mask, token_type_ids=types)
    save_file(
        {
            "input_ids": ids,
            "attention_mask": mask,
            "token_type_ids": types,
            "last_hidden_state": out.last_hidden_state.contiguous(),
            "pooler_output": out.pooler_output.contiguous(),
        },
        FIXTURES / "saved_by_tunelab.safetensors",
    )


if __name__ == "__main__":
    torch.set_num_threads(1)
    FIXTURES.mkdir(parents=True, exist_ok=True)
    minilm()
    tiny_bert()
    tiny_roberta()
    saved_by_tunelab()
    print(f"wrote encoder fixtures to {FIXTURES}")
