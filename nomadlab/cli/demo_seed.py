"""What `nomadlab demo` puts on its board, reading queue and day plan.

Only the demo's own database (in its temp dir) is written. The paper APIs point at
a closed port on 127.0.0.1, so the demo never reaches the network: the queue is
seeded from BibTeX with its metadata already in it.
"""

from __future__ import annotations

import contextlib
from typing import Any

from nomadlab.core.config import Config

DEMO_BIBTEX = r"""
@article{hu2021lora,
  title   = {LoRA: Low-Rank Adaptation of Large Language Models},
  author  = {Hu, Edward J. and Shen, Yelong and Wallis, Phillip and Allen-Zhu, Zeyuan
             and Li, Yuanzhi and Wang, Shean and Wang, Lu and Chen, Weizhu},
  year    = {2021},
  eprint  = {2106.09685},
  archivePrefix = {arXiv},
}
@article{yang2022tensor,
  title   = {Tensor Programs V: Tuning Large Neural Networks via Zero-Shot
             Hyperparameter Transfer},
  author  = {Yang, Greg and Hu, Edward J. and Babuschkin, Igor and others},
  year    = {2022},
  eprint  = {2203.03466},
  archivePrefix = {arXiv},
}
@article{dettmers2023qlora,
  title   = {QLoRA: Efficient Finetuning of Quantized LLMs},
  author  = {Dettmers, Tim and Pagnoni, Artidoro and Holtzman, Ari and Zettlemoyer, Luke},
  year    = {2023},
  eprint  = {2305.14314},
  archivePrefix = {arXiv},
}
@article{hoffmann2022chinchilla,
  title   = {Training Compute-Optimal Large Language Models},
  author  = {Hoffmann, Jordan and Borgeaud, Sebastian and Mensch, Arthur and others},
  year    = {2022},
  eprint  = {2203.15556},
  archivePrefix = {arXiv},
}
"""


def offline(config: Config) -> None:
    """No paper lookups leave this machine during the demo."""
    config.papers.arxiv_api = "http://127.0.0.1:9/api/query"
    config.papers.crossref_api = "http://127.0.0.1:9/works"


def seed(services: Any) -> None:
    """Cards linked to the simulated runs, a reading queue, today's plan."""
    board = services.board
    if board is not None:
        with contextlib.suppress(Exception):
            board.add_card("LoRA rank 16 vs 64 on Llama-7B", column="Training",
                           links={"host": "lambda-h100", "log": "lambda-h100/train",
                                  "command": "train.py --config configs/llama-7b.yaml"},
                           params={"lr": "3e-4", "lora_r": "16", "batch": "512"},
                           tags=["lora", "llama"], hypothesis="Rank 16 is enough for this task.")
            board.add_card("Mixtral SFT, longer warmup", column="Training",
                           links={"host": "runpod-h200", "log": "runpod-h200/train"},
                           params={"warmup_steps": "2000"}, tags=["mixtral"])
            board.add_card("SDXL LoRA on the 4090s", column="Training",
                           links={"host": "home-4090", "log": "home-4090/train"},
                           params={"resolution": "1024", "batch": "4"}, tags=["sdxl"])
            board.add_card("CLIP fine-tune on product photos", column="Evaluation",
                           links={"host": "gcp-l40s", "log": "gcp-l40s/train"},
                           metrics={"val_loss": "1.0412"}, tags=["clip"])
            board.add_card("Does muP transfer hold at 7B?", column="Hypothesis",
                           tags=["mup"], hypothesis="Tuning at 125M transfers to 7B.")
            board.add_card("Curriculum ordered by loss", column="Hypothesis", tags=["data"])
            board.add_card("Dedup the code subset", column="Data Prep", tags=["data"])
    papers = services.papers
    if papers is not None:
        with contextlib.suppress(Exception):
            papers.import_bibtex(DEMO_BIBTEX, tags=["demo"])
    focus = services.focus
    if focus is not None:
        with contextlib.suppress(Exception):
            today = focus.today()
            focus.add_block(today, 7 * 60, 240, "deep", "LoRA rank ablation")
            focus.add_block(today, 14 * 60, 90, "sprint", "write the eval section")
            focus.add_block(today, 19 * 60, 60, "light", "check runs, reply to messages")
