"""The package without a cluster: plan, run_unit with the per-process session cache,
Session, finalize, and errors as sluice.Error with the engine's message and exit code."""
import os
import pickle
import subprocess

import pytest

import sluice
from conftest import assert_rows_exactly_once, assert_same_tree, run_reference, write_job


@pytest.fixture
def job(tmp_path):
    path = write_job(str(tmp_path / "job"))
    yield path
    sluice.close_sessions()


def test_plan_loads_no_model_and_lists_units(job):
    plan = sluice.plan(job)
    assert plan["format"] == "csv"
    assert len(plan["fingerprint"]) == 64
    assert plan["output"] == os.path.join(os.path.dirname(job), "out")
    assert len(plan["units"]) >= 20
    assert [u["id"] for u in plan["units"]] == [f"{i:05d}" for i in range(len(plan["units"]))]
    assert not any(u["done"] for u in plan["units"])
    assert not os.path.exists(plan["output"])  # planning writes nothing
    shard = sluice.plan(job, shard="1/3")
    assert [u["in_shard"] for u in shard["units"][:4]] == [False, True, False, False]
    assert sluice.plan(job, set=["batch.size=10"])["fingerprint"] != plan["fingerprint"]


def test_run_unit_keeps_one_session_and_commits_once(job, sluice_binary, tmp_path):
    plan = sluice.plan(job)
    ids = [u["id"] for u in plan["units"]]
    first = sluice.run_unit(job, ids[0])
    assert (first["units_done"], first["units_skipped"], first["exit_code"]) == (1, 0, 0)
    assert first["parts"] == ["part-00000.csv"]
    assert first["model_loads"] == 1
    again = sluice.run_unit(job, ids[0], fingerprint=plan["fingerprint"])  # a retried task
    assert (again["units_done"], again["units_skipped"]) == (1, 1)
    assert again["rows_in"] == first["rows_in"]
    second = sluice.run_unit(job, ids[1])
    assert second["model_loads"] == 1  # the same session: the model was loaded once
    assert sluice.session(job) is sluice.session(job, fingerprint=plan["fingerprint"])
    assert sluice.plan(job)["units"][1]["done"]

    # Not complete: finalize names what is missing and writes nothing.
    fin = sluice.finalize(plan["output"])
    assert fin["exit_code"] == 1
    assert fin["missing"][0] == f"{ids[2]}: pending"
    assert len(fin["missing"]) == len(ids) - 2
    p = subprocess.run([sluice_binary, "finalize", plan["output"]], capture_output=True, text=True)
    assert p.returncode == 1
    lines = p.stderr.splitlines()
    assert f"{len(ids) - 2} of {len(ids)} unit(s) not committed" in lines[0]
    assert lines[1:21] == [f"  {i}: pending" for i in ids[2:22]]  # one line per unit, capped
    assert lines[21] == f"  … and {len(ids) - 22} more (sluice status {plan['output']})"
    assert not os.path.exists(os.path.join(plan["output"], "_SUCCESS"))

    # The rest by a session of its own (the kept one must let go of the directory first).
    sluice.close_sessions(job)
    with sluice.Session(job, shared=False) as s:
        assert s.fingerprint == plan["fingerprint"]
        report = s.run_units(s.unit_ids())
        assert (report["units_done"], report["units_skipped"], report["exit_code"]) == (len(ids), 2, 0)
    fin = sluice.finalize(plan["output"])
    assert (fin["exit_code"], fin["missing"], fin["units_done"]) == (0, [], len(ids))
    assert os.path.exists(os.path.join(plan["output"], "_SUCCESS"))
    assert_same_tree(plan["output"], run_reference(sluice_binary, job, str(tmp_path / "ref")))
    assert_rows_exactly_once(plan["output"])


def test_errors_carry_message_and_exit_code(job):
    with pytest.raises(sluice.Error) as e:
        sluice.run_unit(job, "99999")
    assert e.value.exit_code == 2 and e.value.code == "invalid_argument"
    assert str(e.value).startswith("unit '99999' is not a unit of this job")
    with pytest.raises(sluice.Error) as e:
        sluice.run_unit(job, "00000", fingerprint="0" * 64)
    assert e.value.code == "failed_precondition" and "changed since it was planned" in str(e.value)
    with pytest.raises(sluice.Error) as e:
        sluice.plan(job, set=["batch.size=nope"])
    assert e.value.exit_code == 2 and "batch.size" in str(e.value)
    with pytest.raises(sluice.Error) as e:
        sluice.plan(job, shard="3/3")
    assert "--shard '3/3'" in str(e.value)
    with pytest.raises(sluice.Error) as e:
        sluice.finalize(os.path.dirname(job))
    assert e.value.code == "not_found"
    copy = pickle.loads(pickle.dumps(e.value))  # Dask ships task errors pickled
    assert (str(copy), copy.exit_code, copy.code) == (str(e.value), e.value.exit_code, e.value.code)
    s = sluice.Session(job)
    s.close()
    with pytest.raises(sluice.Error, match="the session is closed"):
        s.run_units(["00000"])
