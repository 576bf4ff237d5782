"""Config validation: the shipped config is valid and bad values name their key."""

import copy

import pytest
from snakemake.utils import validate as snakemake_validate

from actionmd.config import SCHEMA, ConfigError, check, load, resolve, validate


@pytest.fixture(scope="module")
def good():
    return load()


def test_shipped_config_is_valid_under_snakemake(good):
    snakemake_validate(copy.deepcopy(good), str(SCHEMA))
    for preset in ("test", "demo", "paper"):
        cfg = {**good, "preset": preset}
        for system in ("one_body", "three_body"):
            assert resolve(cfg, system)["training"]["batch_size"] >= 1


def test_paper_preset_is_the_si_protocol(good):
    paper = good["presets"]["paper"]
    one, three = paper["one_body"], paper["three_body"]
    assert (one["reference"]["dt"], one["reference"]["steps"], one["pairing"]["lag"]) == (0.001, 100000, 64)
    assert (three["reference"]["dt"], three["reference"]["steps"], three["pairing"]["lag"]) == (1e-4, 200000, 256)
    assert one["pairing"]["stride"] == three["pairing"]["stride"] == 1  # all pairs
    assert (one["rollout"]["steps"], three["rollout"]["steps"]) == (312, 4000)
    assert one["pairing"]["lag"] * one["reference"]["dt"] == pytest.approx(0.064)
    assert three["pairing"]["lag"] * three["reference"]["dt"] == pytest.approx(0.0256)
    for proto in (one, three):
        t = proto["training"]
        assert (t["epochs"], t["batch_size"], t["learning_rate"], t["lr_decay"], t["lr_decay_steps"]) == (
            20,
            8,
            1e-3,
            0.7,
            10000,
        )
        assert t["hidden"] == [128, 128] and t["rotations"]
    assert three["rollout"]["large_step_verlet"] and not one["rollout"]["large_step_verlet"]
    assert good["solver"]["mixing"] == 0.3


def test_paper_preset_is_the_si_argon_protocol(good):
    argon, physics = good["presets"]["paper"]["argon"], good["systems"]["argon"]
    assert (physics["epsilon"], physics["sigma"], physics["cutoff"]) == (0.0104, 3.4, 10.0)
    assert (physics["lattice_constant"], physics["cells"], physics["temperature"]) == (4.05, [4, 4, 4], 80.0)
    ref, pair = argon["reference"], argon["pairing"]
    # 10 training runs as in the SI, plus one validation and one held-out run
    assert ref["runs"] - pair["validation_runs"] - pair["held_out_runs"] == 10
    assert (ref["dt"], ref["npt_steps"], ref["nve_steps"]) == (1.0, 100000, 10000)
    assert (pair["lag"], pair["stride"]) == (16, 400)
    assert argon["training"]["epochs"] == 800
    assert argon["rollout"]["steps"] * pair["lag"] * ref["dt"] == 100000  # 100 ps at 16 fs
    cfg = {**good, "preset": "paper"}
    assert resolve(cfg, "argon")["solver"]["mixing"] == 0.3  # global solver, system overrides merged
    assert resolve(cfg, "argon")["solver"]["tolerance"] == argon["rollout"]["solver"]["tolerance"]


def test_paper_preset_is_the_si_water_protocol(good):
    w, physics = good["presets"]["paper"]["water"], good["systems"]["water"]
    ref, pair, roll = w["reference"], w["pairing"], w["rollout"]
    assert ref["volume_scales"] == [0.9, 1.0, 1.1] and physics["density"] == 0.997
    assert ref["temperatures"] == {"start": 20, "stop": 1000, "step": 20}
    assert ref["nvt_steps"] * ref["nvt_dt"] == 25000 and physics["langevin_tau"] == 10.0  # 25 ps Langevin
    assert ref["nve_steps"] * ref["dt"] == 2000 and ref["dt"] == 0.25  # 2 ps NVE at 0.25 fs
    assert pair["lag"] == 8 and pair["stride"] * ref["dt"] == 100  # 2 fs, pairs every 100 fs
    assert roll["steps"] * pair["lag"] * ref["dt"] == 100000 and physics["thermostat_tau"] == 10.0
    assert physics["temperature"] == 300.0
    assert 2 * w["box"]["molecules_per_side"] ** 3 == 128 and w["box"]["lattice"] == "bcc"


def mutate(cfg, path, value):
    bad = copy.deepcopy(cfg)
    node = bad
    for key in path[:-1]:
        node = node[key]
    if value is KeyError:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return bad


BAD = [
    # (path, value, text the error must contain)
    (("presets", "demo", "one_body", "training", "epochs"), "ten", "epochs"),
    (("presets", "demo", "one_body", "reference", "dt"), -0.001, "dt"),
    (("presets", "paper", "three_body", "rollout", "iterations"), [], "iterations"),
    (("systems", "five_body"), {"G": 1.0}, "five_body"),
    (("preset",), "huge", "preset"),
    (("solver", "mixing"), 1.5, "mixing"),
    (("presets", "test", "three_body", "rollout", "iterations"), [0], "iterations"),
    (("presets", "test", "one_body", "pairing", "lag"), KeyError, "lag"),
    (("device",), "tpu", "device"),
    (("systems", "argon", "epsilon"), -0.0104, "epsilon"),
    (("systems", "argon", "cells"), [4, 4], "cells"),
    (("presets", "demo", "argon", "training", "precision"), 16, "precision"),
    (("presets", "demo", "argon", "reference", "seed"), 0, "seed"),
    (("presets", "paper", "argon", "rollout", "solver"), {"tolerance": 0}, "tolerance"),
    (("systems", "water", "smearing"), 0, "smearing"),
    (("presets", "demo", "water", "box", "lattice"), "fcc", "lattice"),
    (("presets", "demo", "water", "reference", "volume_scales"), [0.1], "volume_scales"),
    (("presets", "demo", "water", "pairing", "validation_every"), 1, "validation_every"),
    (("presets", "demo", "water", "rollout", "seed"), KeyError, "seed"),
]


@pytest.mark.parametrize("path,value,needle", BAD, ids=[".".join(b[0]) for b in BAD])
def test_bad_config_names_the_key(good, path, value, needle):
    bad = mutate(good, path, value)
    with pytest.raises(ConfigError, match=needle):
        validate(bad)
    with pytest.raises(Exception, match=needle):  # what `snakemake` itself reports at start
        snakemake_validate(bad, str(SCHEMA))


@pytest.mark.parametrize(
    "path,value,needle",
    [
        (("presets", "test", "one_body", "pairing", "lag"), 30000, "presets.test.one_body.pairing.lag"),
        (("systems", "three_body", "q0"), [[0.0, 0.0], [1.0, 0.0]], "systems.three_body.q0"),
        (("systems", "one_body", "p0"), [[0.0, 1.0, 0.0]], "systems.one_body.p0"),
        (("systems", "one_body", "q0"), [[0.0, 0.0]], "systems.one_body.q0"),
        (("presets", "demo", "argon", "pairing", "lag"), 20, "presets.demo.argon.pairing.lag"),
        (("presets", "demo", "argon", "pairing", "stride"), 100, "presets.demo.argon.pairing.stride"),
        (("presets", "test", "argon", "reference", "runs"), 2, "presets.test.argon.reference.runs"),
        (("presets", "test", "argon", "rollout", "steps"), 21, "presets.test.argon.rollout.steps"),
        (("presets", "demo", "water", "pairing", "stride"), 100, "presets.demo.water.pairing.stride"),
        (("presets", "test", "water", "pairing", "validation_every"), 4, "presets.test.water.pairing.validation_every"),
        (("presets", "demo", "water", "analysis", "msd_fit"), [0.5, 0.2], "presets.demo.water.analysis.msd_fit"),
        (("presets", "demo", "water", "rollout", "steps"), 1001, "presets.demo.water.rollout.steps"),
    ],
)
def test_cross_key_checks_name_the_key(good, path, value, needle):
    with pytest.raises(ConfigError, match=needle.replace(".", r"\.")):
        check(mutate(good, path, value))
