"""The settings hashes of the published configs, pinned: a run resumes only with the hash it
was made with, so results already published keep resuming through any redesign of how
settings are read."""

from __future__ import annotations

from pathlib import Path

import pytest

from deepal.experiments.config import load_config, settings_hash, smoke_config

ROOT = Path(__file__).resolve().parents[2]

#: Per config: the hash of all its settings, that of its smoke version, and each strategy's.
#: The smoke versions of configs querying more than 200 examples per round used to score only
#: 200 candidates, which a query of more cannot do; they now score ``n_query``.
PINNED: dict[str, tuple[str, str, dict[str, str]]] = {
    "examples/digits.toml": (
        "1995fbb0fed0",
        "6eb6464400d2",
        {
            "RandomSampling": "1995fbb0fed0",
            "MarginSampling": "1995fbb0fed0",
            "EntropySampling": "1995fbb0fed0",
        },
    ),
    "examples/mnist.toml": (
        "04ca64176be5",
        "8e502165f4ce",  # smoke: max_candidates raised to n_query
        {
            "RandomSampling": "04ca64176be5",
            "MarginSampling": "04ca64176be5",
            "EntropySampling": "04ca64176be5",
        },
    ),
    "experiments/batchbald2019.toml": (
        "40a93d3a25ec",
        "3d9e708da712",
        {
            "BatchBALD": "74897420e8e8",
            "BALDDropout": "c3d89c53ea75",
            "RandomSampling": "ce6462bcd2e0",
        },
    ),
    "experiments/batchbald2019_cpu.toml": (
        "4b16e4f3467a",
        "42a78ddced19",
        {
            "BatchBALD": "79725ddd832b",
            "BALDDropout": "f1d3532f85f6",
            "RandomSampling": "140bbfd2af22",
        },
    ),
    "experiments/frontier_both.toml": (
        "5be7e7bdb6f5",  # resized to a CPU before any result: 1,000 steps, then 100 a round
        "90200c715f12",
        {
            "RandomSampling": "b41f30d6b931",
            "MarginSampling": "b41f30d6b931",
            "BALDDropout": "b41f30d6b931",
            "EPIG": "b41f30d6b931",
            "TypiClust": "cc433e8772c2",
            "ProbCover": "62ebba5b2ee6",
        },
    ),
    "experiments/frontier_both_cpu.toml": (
        "a385bb694c70",
        "5e159a02b60f",
        {
            "RandomSampling": "a385bb694c70",
        },
    ),
    "experiments/frontier_cold.toml": (
        "e7b805e706fb",
        "a795827e7f6a",
        {
            "RandomSampling": "7cd9a9e24dd7",
            "TypiClust": "b3428f07f2a3",
            "ProbCover": "78c42764652f",
        },
    ),
    "experiments/frontier_features.toml": (
        "371fff210279",
        "783d53261662",
        {
            "RandomSampling": "67b99ded2bef",
            "MarginSampling": "67b99ded2bef",
            "BALDDropout": "67b99ded2bef",
            "EPIG": "67b99ded2bef",
            "TypiClust": "63f896a23462",
            "ProbCover": "dffa26633dfb",
        },
    ),
    "experiments/frontier_plain.toml": (
        "9e09752dd2cf",
        "670a358ded2d",
        {
            "RandomSampling": "9e09752dd2cf",
            "MarginSampling": "9e09752dd2cf",
            "BALDDropout": "9e09752dd2cf",
            "EPIG": "9e09752dd2cf",
            "TypiClust": "9e09752dd2cf",
            "ProbCover": "9e09752dd2cf",
        },
    ),
    "experiments/frontier_semi.toml": (
        "ba06c8532ce1",  # resized to a CPU before any result: 1,000 steps, then 100 a round
        "1db891466343",
        {
            "RandomSampling": "ba06c8532ce1",
            "MarginSampling": "ba06c8532ce1",
            "BALDDropout": "ba06c8532ce1",
            "EPIG": "ba06c8532ce1",
            "TypiClust": "ba06c8532ce1",
            "ProbCover": "ba06c8532ce1",
        },
    ),
    "experiments/frontier_semi_cpu.toml": (
        "f7ca7cba7cfb",
        "4440488f4c6a",
        {
            "RandomSampling": "f7ca7cba7cfb",
            "MarginSampling": "f7ca7cba7cfb",
            "BALDDropout": "f7ca7cba7cfb",
            "EPIG": "f7ca7cba7cfb",
            "TypiClust": "f7ca7cba7cfb",
            "ProbCover": "f7ca7cba7cfb",
        },
    ),
    "experiments/gal2017.toml": (
        "86965d32880e",
        "87ef178e43ee",
        {
            "BALDDropout": "a3ff00fefad4",
            "VariationRatioDropout": "6f23350f4d31",
            "EntropySamplingDropout": "551c3a598750",
            "MeanSTDDropout": "d197e8dac689",
            "RandomSampling": "30c6d7506231",
        },
    ),
    "experiments/gal2017_keras.toml": (
        "339a2c1d15f1",
        "4991e8652cdc",
        {
            "BALDDropout": "5b056f1bfe40",
            "VariationRatioDropout": "7b5844ae561b",
            "EntropySamplingDropout": "43910d515d72",
            "MeanSTDDropout": "e8d4a78e3842",
            "RandomSampling": "ec83c153bd40",
        },
    ),
    "experiments/modern_batchbald_low_cpu.toml": (
        "7255506f002a",
        "e543960d6c55",
        {
            "RandomSampling": "7255506f002a",
            "MarginSampling": "7255506f002a",
            "BatchBALD": "7255506f002a",
        },
    ),
    "experiments/modern_batchbald_mid_cpu.toml": (
        "9580a119a0dc",
        "3983e77fc426",  # smoke: max_candidates raised to n_query
        {
            "RandomSampling": "83f94f8c2311",
            "MarginSampling": "83f94f8c2311",
            "BatchBALD": "9580a119a0dc",
        },
    ),
    "experiments/modern_low.toml": (
        "7255506f002a",
        "e543960d6c55",
        {
            "RandomSampling": "7255506f002a",
            "MarginSampling": "7255506f002a",
            "BALDDropout": "7255506f002a",
            "VariationRatioDropout": "7255506f002a",
            "MeanSTDDropout": "7255506f002a",
            "BatchBALD": "7255506f002a",
            "PowerBALD": "7255506f002a",
            "SoftmaxBALD": "7255506f002a",
            "SoftRankBALD": "7255506f002a",
            "BADGE": "7255506f002a",
            "ClusterMargin": "7255506f002a",
            "TypiClust": "7255506f002a",
            "ProbCover": "7255506f002a",
            "BAIT": "7255506f002a",
            "KCenterGreedyRobust": "7255506f002a",
            "LossPrediction": "7255506f002a",
            "VAAL": "7255506f002a",
            "WAAL": "7255506f002a",
            "CEAL": "7255506f002a",
            "ActiveLearningByLearning": "7255506f002a",
        },
    ),
    "experiments/modern_low_cpu.toml": (
        "7255506f002a",
        "e543960d6c55",
        {
            "RandomSampling": "7255506f002a",
            "MarginSampling": "7255506f002a",
            "ActiveLearningByLearning": "7255506f002a",
            "KCenterGreedyRobust": "7255506f002a",
        },
    ),
    "experiments/modern_low_ensemble.toml": (
        "3aa094c0cb4f",
        "eefbbd22b858",
        {
            "RandomSampling": "7255506f002a",
            "MarginSampling": "7255506f002a",
            "BALDDropout": "3aa094c0cb4f",
        },
    ),
    "experiments/modern_mid.toml": (
        "d03b4431321b",
        "583d1da00e35",  # smoke: max_candidates raised to n_query
        {
            "RandomSampling": "83f94f8c2311",
            "MarginSampling": "83f94f8c2311",
            "BALDDropout": "83f94f8c2311",
            "VariationRatioDropout": "83f94f8c2311",
            "MeanSTDDropout": "83f94f8c2311",
            "BatchBALD": "9580a119a0dc",
            "PowerBALD": "83f94f8c2311",
            "SoftmaxBALD": "83f94f8c2311",
            "SoftRankBALD": "83f94f8c2311",
            "BADGE": "83f94f8c2311",
            "ClusterMargin": "83f94f8c2311",
            "TypiClust": "83f94f8c2311",
            "ProbCover": "83f94f8c2311",
            "BAIT": "c1c5deaf3d87",
            "KCenterGreedyRobust": "83f94f8c2311",
            "LossPrediction": "83f94f8c2311",
            "VAAL": "83f94f8c2311",
            "WAAL": "83f94f8c2311",
            "CEAL": "83f94f8c2311",
            "ActiveLearningByLearning": "83f94f8c2311",
        },
    ),
    "experiments/modern_mid_cpu.toml": (
        "83f94f8c2311",
        "ca4a1a69e6af",  # smoke: max_candidates raised to n_query
        {
            "RandomSampling": "83f94f8c2311",
            "MarginSampling": "83f94f8c2311",
            "ActiveLearningByLearning": "83f94f8c2311",
            "CEAL": "83f94f8c2311",
        },
    ),
    "experiments/modern_mid_ensemble.toml": (
        "bb73b9b1dca8",
        "eeb9ad73a5fe",  # smoke: max_candidates raised to n_query
        {
            "RandomSampling": "83f94f8c2311",
            "MarginSampling": "83f94f8c2311",
            "BALDDropout": "bb73b9b1dca8",
        },
    ),
    "experiments/modern_vaal_low_cpu.toml": (
        "e8c156ddf3d1",
        "ebb425172359",
        {
            "RandomSampling": "7255506f002a",
            "MarginSampling": "7255506f002a",
            "VAAL": "e8c156ddf3d1",
        },
    ),
    "experiments/modern_vaal_mid_cpu.toml": (
        "e3f594065737",
        "1cb4df877f55",  # smoke: max_candidates raised to n_query
        {
            "RandomSampling": "83f94f8c2311",
            "MarginSampling": "83f94f8c2311",
            "VAAL": "e3f594065737",
        },
    ),
}


def test_every_published_config_is_pinned():
    found = {
        str(path.relative_to(ROOT))
        for folder in ("examples", "experiments")
        for path in (ROOT / folder).glob("*.toml")
    }
    assert found == set(PINNED)


@pytest.mark.parametrize("name", sorted(PINNED))
def test_a_published_config_keeps_its_settings_hashes(name: str):
    whole, smoke, per_strategy = PINNED[name]
    config = load_config(ROOT / name)
    assert settings_hash(config.run_settings()) == whole
    assert settings_hash(smoke_config(config).run_settings()) == smoke
    assert {
        strategy: settings_hash(config.run_settings(strategy)) for strategy in config.strategies
    } == per_strategy
