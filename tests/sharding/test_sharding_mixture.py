"""Stage mixtures: shares per domain, multipliers per source, repetition caps (water-filling)."""

from __future__ import annotations

import pytest

from sharding.mixture import MixtureConfig, format_budget_table, plan_budget

AVAIL = {("web", "crawl"): (100, 1_000_000), ("stem", "math"): (10, 100_000), ("code", "repos"): (20, 200_000)}


def by_source(rows):
    return {r.source: r for r in rows}


def test_natural_shares_give_one_pass_over_everything():
    cfg = MixtureConfig.from_dict({"domains": {"web": 1_000_000, "stem": 100_000, "code": 200_000}})
    rows = by_source(plan_budget(AVAIL, cfg))
    assert {s: round(r.epochs, 6) for s, r in rows.items()} == {"crawl": 1.0, "math": 1.0, "repos": 1.0}


def test_upweighted_domain_is_repeated_and_the_rest_subsampled():
    cfg = MixtureConfig.from_dict({"domains": {"web": 0.5, "stem": 0.25, "code": 0.25}})
    rows = by_source(plan_budget(AVAIL, cfg))  # total = corpus size 1.3M
    assert rows["math"].budget == 325_000 and rows["math"].epochs == pytest.approx(3.25)
    assert rows["crawl"].budget == 650_000 and rows["crawl"].epochs == pytest.approx(0.65)


def test_repetition_cap_moves_the_surplus_to_uncapped_sources():
    cfg = MixtureConfig.from_dict({"domains": {"web": 0.5, "stem": 0.25, "code": 0.25}, "max_repeats": 2.0})
    rows = by_source(plan_budget(AVAIL, cfg))
    assert rows["math"].budget == 200_000  # capped at 2 passes instead of 3.25
    assert sum(r.budget for r in rows.values()) == 1_300_000  # the budget is still spent
    assert rows["crawl"].budget / rows["repos"].budget == pytest.approx(
        2.0, rel=1e-5
    )  # 0.5 : 0.25 kept among the rest


def test_per_source_weight_cap_and_total():
    cfg = MixtureConfig.from_dict(
        {
            "domains": {"web": 1, "stem": 1, "code": 1},
            "total_tokens": 600_000,
            "sources": {"math": {"max_repeats": 0.5}},
        }
    )
    rows = by_source(plan_budget(AVAIL, cfg))
    assert rows["math"].budget == 50_000
    assert rows["crawl"].budget == rows["repos"].budget == 275_000


def test_everything_capped_spends_less_than_the_budget():
    cfg = MixtureConfig.from_dict({"max_repeats": 1.0, "total_tokens": 10_000_000})
    assert sum(r.budget for r in plan_budget(AVAIL, cfg)) == 1_300_000


def test_zero_weight_domain_gets_nothing():
    cfg = MixtureConfig.from_dict({"domains": {"web": 1.0, "stem": 0.0, "code": 1.0}})
    rows = by_source(plan_budget(AVAIL, cfg))
    assert rows["math"].budget == 0 and rows["crawl"].budget + rows["repos"].budget == 1_300_000


@pytest.mark.parametrize(
    "cfg, match",
    [
        ({"domains": {"images": 1.0}}, "unknown domain 'images'"),
        ({"max_repeats": -1}, "max_repeats = -1"),
        ({"total": 5}, r"unknown key\(s\) \['total'\]"),
        ({"sources": {"x": {"epochs": 2}}}, "mixture.sources.x"),
    ],
)
def test_bad_config_names_the_key(cfg, match):
    with pytest.raises(ValueError, match=match):
        MixtureConfig.from_dict(cfg)


def test_budget_table_lists_every_source_and_the_total():
    rows = plan_budget(AVAIL, MixtureConfig.from_dict({}))
    table = format_budget_table("general", rows, "o200k_harmony", 4096, estimated=True)
    assert "estimated" in table and "crawl" in table and "math" in table and "repos" in table
    assert "1,300,000" in table and "317 sequences of 4,096" in table


def test_a_tiny_share_never_rounds_to_no_budget():
    """A source the mixture wants (share > 0) keeps a budget of at least one token, however small its share:
    a few short synthetic documents beside a large corpus were planned 0 tokens and never packed."""
    avail = {("web", "crawl"): (1000, 10_000_000), ("stem", "synth-tiny"): (1, 9)}
    cfg = MixtureConfig.from_dict({"domains": {"web": 1.0, "stem": 1e-9}})
    rows = by_source(plan_budget(avail, cfg))
    assert 0 < rows["synth-tiny"].share < 1e-9 and rows["synth-tiny"].budget >= 1
    assert (
        by_source(plan_budget(avail, MixtureConfig.from_dict({"domains": {"web": 1.0, "stem": 0.0}})))[
            "synth-tiny"
        ].budget
        == 0
    )  # an explicit zero still means none
