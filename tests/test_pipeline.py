"""The stages end to end through the CLI: defaults chain, resume, bad input, identity kept."""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from PIL import Image
from typer.testing import CliRunner

from augmentface.cli import app
from augmentface.imageio import read_image
from augmentface.manifest import read_manifest
from augmentface.manifest_parts import WriterLock, live_parts
from augmentface.stages import fit3dmm as fit_stage
from augmentface.stages.execution import Execution
from augmentface.stages.fit3dmm import Fit3dmmConfig, run_fit3dmm
from augmentface.stages.schemas import FITS, LABELS

runner = CliRunner()


def _cli(*args: str):
    result = runner.invoke(app, list(args))
    return result


@pytest.fixture()
def astronaut_file(tmp_path, astronaut):
    path = tmp_path / "in" / "astronaut.png"
    path.parent.mkdir()
    Image.fromarray(astronaut).save(path)
    return path


def test_a_smile_that_survives_under_a_negative_label_is_rejected(
    tmp_path, astronaut_file, monkeypatch
):
    """The astronaut smiles broadly: a replacement leaves her smile's texture, so sadness and
    anger outputs are rejected with the reason, happiness ones ship; the limit is an option."""
    monkeypatch.chdir(tmp_path)
    assert _cli("fit3dmm", str(astronaut_file.parent), "-q").exit_code == 0
    targets = read_manifest(tmp_path / "augment/fits.parquet", FITS, run_first="").df
    assert targets["label_AU12"].isna().all()  # a lone photo: every face is a source
    for emotion in ("sadness", "anger", "happiness"):
        assert _cli("synth-emotion", "--emotion", emotion, "-q").exit_code == 0
        assert _cli("render", "-q").exit_code == 0
        result = _cli("blend")
        assert result.exit_code == 0  # a rejection is a decision, not a failure
        labels = pd.read_csv(tmp_path / "augment" / "output" / "labels.csv")
        if emotion == "happiness":
            assert labels.status[0] == "ok"
            continue
        assert labels.status[0] == "rejected" and pd.isna(labels.output_path[0])
        assert "AU12" in labels.error[0] and "survives" in labels.error[0]
        assert "rejected" in result.output
    _cli("synth-emotion", "--emotion", "sadness", "-q")
    _cli("render", "-q")
    assert _cli("blend", "--max-source-residual", "6", "-q").exit_code == 0
    assert pd.read_csv(tmp_path / "augment/output/labels.csv").status[0] == "ok"


def test_stages_chain_with_defaults(tmp_path, astronaut_file, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert _cli("fit3dmm", str(astronaut_file.parent), "-q").exit_code == 0
    assert _cli("synth-va", "--valence", "0.4", "--arousal", "0.2", "-q").exit_code == 0
    assert _cli("render", "-q").exit_code == 0
    assert _cli("blend", "-q").exit_code == 0
    labels = pd.read_csv(tmp_path / "augment" / "output" / "labels.csv")
    assert len(labels) == 1 and labels.status[0] == "ok"
    assert labels.valence[0] == pytest.approx(0.4) and labels.arousal[0] == pytest.approx(0.2)
    assert labels.AU12[0] > 1.0  # positive valence: a smile from the prior
    out = read_image(labels.output_path[0])
    assert out.shape == (512, 512, 3)
    meta = read_manifest(tmp_path / "augment/output/labels.parquet", LABELS, run_first="").meta
    assert meta["face_model_id"].startswith("mediapipe468") and meta["seed"] == 0
    assert _cli("export-mesh", "-q").exit_code == 0
    assert _cli("export-mesh", "--from", "fits", "--format", "ply", "-q").exit_code == 0
    meshes = sorted(p.name for p in (tmp_path / "augment" / "meshes").iterdir())
    assert len(meshes) == 2 and meshes[0].endswith(".obj") and meshes[1].endswith("_fit.ply")
    # the same command again resumes: nothing to do, nothing duplicated
    result = _cli("blend")
    assert result.exit_code == 0
    assert len(pd.read_csv(tmp_path / "augment" / "output" / "labels.csv")) == 1


def test_changed_upstream_is_not_resumed(tmp_path, astronaut_file, monkeypatch):
    """Rows made from an upstream manifest that has since changed are redone, not kept."""
    from augmentface.stages.render import RenderConfig, run_render

    monkeypatch.chdir(tmp_path)
    assert _cli("fit3dmm", str(astronaut_file.parent), "-q").exit_code == 0
    assert _cli("synth-au", "--au", "12=3", "-n", "2", "-q").exit_code == 0
    assert run_render(RenderConfig(quiet=True)).done == 2
    assert run_render(RenderConfig(quiet=True)).skipped == 2  # unchanged: resumed
    assert _cli("synth-au", "--au", "12=3", "-n", "2", "--seed", "7", "-q").exit_code == 0
    again = run_render(RenderConfig(quiet=True))  # sample 1 has other offsets now
    assert (again.done, again.skipped) == (2, 0)


def test_changed_labels_and_layouts_resume_correctly(tmp_path, astronaut_file, monkeypatch):
    from augmentface.stages.blend import BlendConfig, run_blend

    monkeypatch.chdir(tmp_path)
    assert _cli("fit3dmm", str(astronaut_file.parent), "-q").exit_code == 0
    va = ("synth-va", "--valence", "0.62", "--arousal", "0.33", "-q")
    assert _cli(*va).exit_code == 0
    assert _cli("render", "-q").exit_code == 0
    assert run_blend(BlendConfig(quiet=True, layout="flat")).done == 1
    assert run_blend(BlendConfig(quiet=True, layout="flat")).skipped == 1  # resumed
    # another layout root only writes the layout again: no output is blended again
    again = run_blend(BlendConfig(quiet=True, layout="flat", layout_root=tmp_path / "elsewhere"))
    assert (again.skipped, again.done) == (1, 0)
    assert (tmp_path / "elsewhere" / "labels.csv").exists()
    # the same expression with another label: nothing to re-render, but the labels change
    assert _cli(*va, "--label", "class-median").exit_code == 0
    assert _cli("render", "-q").exit_code == 0
    assert run_blend(BlendConfig(quiet=True, layout="flat")).done == 1
    labels = pd.read_csv(tmp_path / "augment/output/labels.csv")
    assert (labels.valence[0], labels.arousal[0]) == pytest.approx((0.7, 0.3))
    flat = pd.read_csv(tmp_path / "augment/output/flat/labels.csv")
    assert flat.valence[0] == pytest.approx(0.7)
    # a layout written over the photos it was made from is refused
    result = _cli("blend", "--layout", "flat", "--layout-root", str(astronaut_file.parent.parent))
    assert result.exit_code == 2 and "replace the dataset's own files" in result.output


def test_missing_upstream_names_the_command(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = _cli("render")
    assert result.exit_code == 2
    assert "augmentface synth-au or augmentface synth-va" in result.output
    result = _cli("synth-au", "--au", "12=3")
    assert result.exit_code == 2 and "augmentface fit3dmm" in result.output


def test_a_second_run_on_one_workdir_is_refused(tmp_path, astronaut_file, monkeypatch):
    """Two runs of a stage on one workdir used to overwrite each other silently: while one
    writes the manifest, the other stops with one line (exit 2) and leaves it alone."""
    monkeypatch.chdir(tmp_path)
    manifest = tmp_path / "augment" / "fits.parquet"
    busy = WriterLock(manifest)
    try:
        result = _cli("fit3dmm", str(astronaut_file.parent), "-q")
    finally:
        busy.release()
    assert result.exit_code == 2
    assert "another run" in result.output and "fits.parquet" in result.output
    assert "Traceback" not in result.output
    assert not live_parts(manifest)
    assert _cli("fit3dmm", str(astronaut_file.parent), "-q").exit_code == 0


def test_bad_targets_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert "allowed: AU1" in _cli("synth-au", "--au", "3=2").output
    assert "0–5" in _cli("synth-au", "--aus", "AU12=7").output
    assert "[-1, 1]" in _cli("synth-va", "--valence", "1.5", "--arousal", "0").output


def _bad_inputs(folder, astronaut):
    folder.mkdir()
    (folder / "text.jpg").write_text("not an image")
    (folder / "empty.jpg").write_bytes(b"")
    buf = io.BytesIO()
    Image.fromarray(astronaut).save(buf, "JPEG")
    (folder / "truncated.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    Image.fromarray(astronaut).convert("L").save(folder / "grey.png")
    cv2.imwrite(str(folder / "deep16.png"), (astronaut[..., ::-1].astype(np.uint16) * 257))
    Image.fromarray(astronaut).convert("RGBA").save(folder / "rgba.png")
    Image.fromarray(astronaut).convert("CMYK").save(folder / "cmyk.jpg", "JPEG")
    Image.fromarray(astronaut).save(folder / "webp_named.jpg", "WEBP")
    noise = np.random.default_rng(0).integers(0, 255, (256, 256, 3), dtype=np.uint8)
    Image.fromarray(noise).save(folder / "noface.png")
    rotated = Image.fromarray(np.rot90(astronaut, k=1).copy())  # stored sideways
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise on display: upright again
    rotated.save(folder / "exif_rotated.jpg", exif=exif)
    # a PNG header that declares 30000 × 30000 pixels and carries no pixel data
    import struct
    import zlib

    ihdr = struct.pack(">IIBBBBB", 30000, 30000, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    png = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + chunk
    png += struct.pack(">I", zlib.crc32(chunk)) + struct.pack(">I", 0) + b"IEND"
    png += struct.pack(">I", zlib.crc32(b"IEND"))
    (folder / "bomb.png").write_bytes(png)


def test_bad_inputs_each_get_a_status(tmp_path, astronaut):
    folder = tmp_path / "bad"
    _bad_inputs(folder, astronaut)
    missing = tmp_path / "missing.jpg"
    report = run_fit3dmm([folder, missing], Fit3dmmConfig(workdir=tmp_path / "w", quiet=True))
    df = read_manifest(tmp_path / "w" / "fits.parquet", FITS, run_first="").df
    status = {p.split("/")[-1]: s for p, s in zip(df.image_path, df.status, strict=True)}
    assert status == {
        "text.jpg": "unreadable", "empty.jpg": "unreadable", "truncated.jpg": "unreadable",
        "grey.png": "ok", "deep16.png": "ok", "rgba.png": "ok", "cmyk.jpg": "ok",
        "webp_named.jpg": "ok", "noface.png": "no_face", "exif_rotated.jpg": "ok",
        "bomb.png": "too_large", "missing.jpg": "missing",
    }  # fmt: skip
    errors = dict(zip(df.image_path, df.error, strict=True))
    assert all(str(folder) in errors[p] or "missing" in p for p in df.image_path[df.status != "ok"])
    rotated = df[df.image_path.str.endswith("exif_rotated.jpg")].iloc[0]
    assert (rotated.width_px, rotated.height_px) == (512, 512)
    assert report.done == 6 and report.n_failed == 6
    # the CLI exits 1 when rows failed, 0 with --allow-failures; inputs are never modified
    before = {p: p.read_bytes() for p in folder.iterdir()}
    assert _cli("fit3dmm", str(folder), "-w", str(tmp_path / "c"), "-q").exit_code == 1
    assert (
        _cli("fit3dmm", str(folder), "-w", str(tmp_path / "c"), "-q", "--allow-failures").exit_code
        == 0
    )
    assert before == {p: p.read_bytes() for p in folder.iterdir()}


def test_killed_run_resumes_without_duplicates(tmp_path, astronaut, monkeypatch):
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(4):
        Image.fromarray(np.roll(astronaut, 3 * i, axis=1)).save(folder / f"a{i}.png")
    real = fit_stage.fit_source
    calls = {"n": 0}

    def dying(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(fit_stage, "fit_source", dying)
    config = Fit3dmmConfig(workdir=tmp_path / "w", quiet=True)
    with pytest.raises(KeyboardInterrupt):
        run_fit3dmm([folder], config)
    partial = read_manifest(tmp_path / "w" / "fits.parquet", FITS, run_first="").df
    assert len(partial) == 2  # the finished rows survived the kill
    monkeypatch.setattr(fit_stage, "fit_source", real)
    report = run_fit3dmm([folder], config)
    assert report.skipped == 2 and report.done == 2
    df = read_manifest(tmp_path / "w" / "fits.parquet", FITS, run_first="").df
    assert len(df) == 4 and not df.duplicated(["image_path", "face_index"]).any()
    # a fresh run, reopening the landmarker every 3 images, gives the same rows
    fresh = run_fit3dmm(
        [folder], Fit3dmmConfig(workdir=tmp_path / "fresh", quiet=True, recycle_every=3)
    )
    assert fresh.done == 4
    ref = read_manifest(tmp_path / "fresh" / "fits.parquet", FITS, run_first="").df
    np.testing.assert_allclose(np.stack(df.landmarks_px), np.stack(ref.landmarks_px))


def test_outside_the_mask_is_untouched(tmp_path, astronaut_file, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert _cli("fit3dmm", str(astronaut_file), "-q").exit_code == 0
    assert _cli("synth-au", "--aus", "AU1=4,AU2=4,AU25=3,AU26=4", "-q").exit_code == 0
    assert _cli("render", "-q").exit_code == 0
    # The astronaut smiles: her smile would contradict this label and be rejected; this test
    # is about the pixels outside the mask, so every output is kept.
    assert _cli(
        "blend", "--format", "png", "--method", "poisson", "--max-source-residual", "6", "-q"
    ).exit_code == 0
    labels = pd.read_csv(tmp_path / "augment/output/labels.csv")
    out = read_image(labels.output_path[0])
    src = read_image(astronaut_file)
    renders = pd.read_parquet(tmp_path / "augment/renders.parquet")
    x0, y0, x1, y1 = (int(v) for v in renders.roi_px[0])
    outside = np.ones(src.shape[:2], bool)
    outside[y0:y1, x0:x1] = False
    assert np.array_equal(out[outside], src[outside])
    assert not np.array_equal(out[y0:y1, x0:x1], src[y0:y1, x0:x1])  # the face did change


@pytest.mark.parametrize("method", ["alpha", "poisson"])
def test_own_expression_reproduces_the_photo(model, landmarker, astronaut, method):
    from augmentface.blend import blend_face
    from augmentface.face.fitting import fit_face
    from augmentface.render.face_render import render_expression

    face = landmarker.detect(astronaut)[0]
    fit = fit_face(face.landmarks_px, model)
    own = fit.expression_offsets_model_mm  # the synthesis target: the face's own expression
    delta = fit.expression_change_px(own)
    rendered = render_expression(astronaut, face.landmarks_px, delta, model)
    out = blend_face(astronaut, rendered.image_rgb, rendered.alpha, rendered.roi, method)
    x0, y0, x1, y1 = rendered.roi
    mse = np.mean((out[y0:y1, x0:x1].astype(float) - astronaut[y0:y1, x0:x1]) ** 2)
    assert 10 * np.log10(255**2 / max(mse, 1e-12)) >= 35


def test_evaluate_measures_the_outputs(tmp_path, astronaut_file):
    work = tmp_path / "w"
    result = _cli(
        "run", str(astronaut_file), "--au", "AU6=5,AU12=5", "--va", "0.4,0.2", "-w", str(work), "-q"
    )
    assert result.exit_code == 0, result.output
    result = _cli("evaluate", "-w", str(work))
    assert result.exit_code == 0, result.output
    assert "evaluation per target" in result.output
    evaluation = pd.read_csv(work / "output" / "evaluation.csv")
    assert len(evaluation) == 2 and (evaluation.status == "ok").all()
    assert evaluation.redetected.all() and evaluation.same_person.all()
    assert (evaluation.identity_distance < 0.6).all()
    assert (evaluation.nme_dlib68 < 0.06).all() and (evaluation.nme_mediapipe < 0.05).all()
    assert (evaluation.seam_ratio < 1.2).all()
    summary = pd.read_csv(work / "output" / "evaluation_summary.csv")
    assert set(summary.target_id) == {"AU6=5_AU12=5", "V+0.40_A+0.20"}
    # the same evaluation again resumes its finished face instead of measuring it again
    from augmentface.stages.evaluate import EvaluateConfig, run_evaluate

    again, _ = run_evaluate(EvaluateConfig(workdir=work, quiet=True))
    assert (again.done, again.skipped) == (0, 1)  # one face, both outputs done
    assert len(pd.read_csv(work / "output" / "evaluation.csv")) == 2


def test_quality_gates_reject_and_keep(tmp_path, astronaut_file):
    strict = tmp_path / "strict"
    result = _cli(
        "run",
        str(astronaut_file),
        "--au",
        "AU6=5,AU12=5",  # her own smile: the source-residual gate lets it through
        "-w",
        str(strict),
        "--max-identity-distance",
        "0.0",
        "--keep-rejected",
        "--no-sheet",
    )
    assert result.exit_code == 0, result.output  # a rejection is an outcome, not a failure
    labels = pd.read_csv(strict / "output" / "labels.csv")
    assert list(labels.status) == ["rejected"]
    assert labels.error[0].startswith("identity distance")
    assert (strict / "output" / "rejected").is_dir()
    assert not (strict / "output" / "images").exists()
    lenient = tmp_path / "lenient"
    result = _cli(
        "run",
        str(astronaut_file),
        "--au",
        "AU6=5,AU12=5",  # her own smile: the source-residual gate lets it through
        "-w",
        str(lenient),
        "-q",
        "--max-identity-distance",
        "0.6",
        "--max-nme",
        "0.1",
        "--min-response=-1",  # the astronaut already smiles more than AU12=4
    )
    assert result.exit_code == 0, result.output
    labels = pd.read_csv(lenient / "output" / "labels.csv")
    assert list(labels.status) == ["ok"]


def test_report_command_writes_page_and_sheet(tmp_path, astronaut_file):
    work = tmp_path / "w"
    assert (
        _cli(
            "run", str(astronaut_file), "--au", "AU1=4,AU2=4", "-w", str(work), "-q",
            "--no-sheet", "--max-source-residual", "6",  # her smile: see above
        ).exit_code
        == 0
    )
    assert _cli("evaluate", "-w", str(work), "-q").exit_code == 0
    result = _cli("report", "-w", str(work))
    assert result.exit_code == 0, result.output
    page = (work / "output" / "report.html").read_text()
    assert "AU1=4_AU2=4" in page and "data:image/" in page
    assert (work / "output" / "report_sheet.png").stat().st_size > 1000
    assert oct((work / "output" / "report.html").stat().st_mode & 0o777) != oct(0o600)


def test_closing_lids_slide_over_a_still_eyeball(model, landmarker, astronaut):
    from augmentface.blend import blend_face
    from augmentface.face.fitting import fit_face
    from augmentface.render.face_render import render_expression

    face = landmarker.detect(astronaut)[0]
    fit = fit_face(face.landmarks_px, model)
    target = model.rig.offsets(model.rig.vector({43: 2.5}))
    delta = fit.expression_change_px(target)
    rendered = render_expression(astronaut, face.landmarks_px, delta, model)
    out = blend_face(astronaut, rendered.image_rgb, rendered.alpha, rendered.roi)
    dst = rendered.target_verts_px
    for upper, lower in ((386, 374), (159, 145)):
        # just above the lower lid, the eye stays open: there the eyeball is where it was
        x = round(dst[lower, 0])
        y_low, y_up = dst[lower, 1], dst[upper, 1]
        assert y_low - y_up > 2, "the eye should still be partly open at AU43=2.5"
        y = round(y_up + 0.65 * (y_low - y_up))
        window = (slice(y - 1, y + 1), slice(x - 3, x + 4))
        diff = np.abs(out[window].astype(float) - astronaut[window].astype(float)).mean()
        assert diff < 12, diff


def test_closing_a_laughing_mouth_hides_its_teeth(model, landmarker, astronaut):
    from augmentface.blend import blend_face
    from augmentface.face import topology as topo
    from augmentface.face.fitting import fit_face
    from augmentface.render.face_render import render_expression

    face = landmarker.detect(astronaut)[0]  # she laughs, upper teeth showing
    fit = fit_face(face.landmarks_px, model)
    delta = fit.expression_change_px(np.zeros((468, 3)))  # target: neutral
    rendered = render_expression(astronaut, face.landmarks_px, delta, model)
    out = blend_face(astronaut, rendered.image_rgb, rendered.alpha, rendered.roi)
    mouth = np.zeros(astronaut.shape[:2], np.uint8)
    outer = face.landmarks_px[list(topo.LIPS_OUTER), :2]
    cv2.fillPoly(mouth, [np.round(outer).astype(np.int32)], 1)

    def teeth(image):  # bright, unsaturated pixels inside the source's lips
        hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV)
        return int(((hsv[..., 2] > 200) & (hsv[..., 1] < 45) & (mouth > 0)).sum())

    assert teeth(astronaut) > 50
    assert teeth(out) < 0.3 * teeth(astronaut), (teeth(astronaut), teeth(out))


def test_a_local_dask_cluster_gives_the_same_rows(tmp_path, astronaut):
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(3):
        Image.fromarray(np.roll(astronaut, 5 * i, axis=0)).save(folder / f"a{i}.png")
    (folder / "broken.png").write_bytes(b"not a png")
    one = run_fit3dmm([folder], Fit3dmmConfig(workdir=tmp_path / "one", quiet=True))
    two = run_fit3dmm(
        [folder],
        Fit3dmmConfig(
            workdir=tmp_path / "two", quiet=True, execution=Execution(workers=2), recycle_every=2
        ),
    )
    assert (one.done, one.n_failed) == (two.done, two.n_failed) == (3, 1)
    a = read_manifest(tmp_path / "one" / "fits.parquet", FITS, run_first="").df
    b = read_manifest(tmp_path / "two" / "fits.parquet", FITS, run_first="").df
    # Dask gives rows in the order they finish: compare them by image
    a, b = (df.sort_values("image_path").reset_index(drop=True) for df in (a, b))
    assert list(a.status) == list(b.status)
    ok = a.status == "ok"
    np.testing.assert_allclose(np.stack(a.landmarks_px[ok]), np.stack(b.landmarks_px[ok]))


def _outputs(workdir):
    images = workdir / "output" / "images"
    return {p.name: p.read_bytes() for p in sorted(images.iterdir())}


def test_dask_workers_and_array_shards_give_the_same_outputs(tmp_path, astronaut):
    """Issue 12's acceptance: a LocalCluster of 2 workers, and `--shard 0/2` plus `--shard 1/2`
    of every stage, give the same labels and the same output bytes as one process."""
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(4):
        Image.fromarray(np.roll(astronaut, 4 * i, axis=1)).save(folder / f"a{i}.png")
    one, two, shards = tmp_path / "one", tmp_path / "two", tmp_path / "shards"
    keep = ["--max-source-residual", "9"]  # the astronaut smiles: keep her outputs all the same
    common = ["--au", "AU12=3", "--va", "-0.5,0.3", "--no-sheet", "-q", *keep]
    assert _cli("run", str(folder), "-w", str(one), *common).exit_code == 0
    assert _cli("run", str(folder), "-w", str(two), "--workers", "2", *common).exit_code == 0
    for shard in ("0/2", "1/2"):
        result = _cli("fit3dmm", str(folder), "-w", str(shards), "--shard", shard, "-q")
        assert result.exit_code == 0, result.output
    assert _cli("synth-au", "--au", "12=3", "-w", str(shards), "-q").exit_code == 0
    for shard in ("0/2", "1/2"):
        assert _cli("render", "-w", str(shards), "--shard", shard, "-q").exit_code == 0
    for shard in ("0/2", "1/2"):
        assert _cli("blend", "-w", str(shards), "--shard", shard, "-q", *keep).exit_code == 0
    assert not (shards / "output" / "labels.csv").exists()  # written once all shards are done
    assert _cli("export-layout", "-w", str(shards), "-q").exit_code == 0
    reference = _outputs(one)
    assert len(reference) == 8
    assert _outputs(two) == reference
    assert _outputs(shards) == {k: v for k, v in reference.items() if "AU12-3" in k}
    a, b = (pd.read_csv(w / "output" / "labels.csv") for w in (one, two))
    a, b = (
        df.assign(name=df.output_path.map(lambda p: Path(p).name))
        .sort_values("name")[["name", "status", "AU12", "valence"]]
        .reset_index(drop=True)
        for df in (a, b)
    )
    pd.testing.assert_frame_equal(a, b)


def test_file_system_errors_are_one_line_and_a_loop_costs_one_row(tmp_path, astronaut_file):
    workdir_file = tmp_path / "afile"
    workdir_file.write_text("")
    result = _cli("fit3dmm", str(astronaut_file), "-w", str(workdir_file), "-q")
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "afile/fits.parquet: Not a directory" in result.output
    loop = tmp_path / "loop.jpg"
    loop.symlink_to(loop)
    result = _cli("fit3dmm", str(loop), str(astronaut_file), "-w", str(tmp_path / "w"), "-q")
    assert result.exit_code == 1, result.output  # a row failed; the good photo is fitted
    fits = read_manifest(tmp_path / "w" / "fits.parquet", FITS, run_first="").df
    assert sorted(fits.status) == ["missing", "ok"]


def test_resume_redoes_a_row_whose_file_is_gone(tmp_path, astronaut_file, monkeypatch):
    from augmentface.stages.blend import BlendConfig, run_blend
    from augmentface.stages.render import RenderConfig, run_render

    monkeypatch.chdir(tmp_path)
    assert _cli("fit3dmm", str(astronaut_file.parent), "-q").exit_code == 0
    assert _cli("synth-au", "--au", "12=3", "-n", "2", "-q").exit_code == 0
    assert run_render(RenderConfig(quiet=True)).done == 2
    keep = BlendConfig(quiet=True, max_source_residual=None)
    assert run_blend(keep).done == 2
    labels = pd.read_csv(tmp_path / "augment/output/labels.csv")
    Path(labels.output_path[0]).unlink()
    again = run_blend(keep)
    assert (again.done, again.skipped) == (1, 1)  # only the output that is gone
    assert all(Path(p).is_file() for p in labels.output_path)
    next(iter((tmp_path / "augment" / "renders").iterdir())).unlink()
    again = run_render(RenderConfig(quiet=True))
    assert (again.done, again.skipped) == (1, 1)


def test_a_source_replaced_after_fitting_is_never_shipped(tmp_path, astronaut, monkeypatch):
    """Issue 13: a photo replaced between fit3dmm and render (or render and blend) gets status
    source_changed instead of an output of the old fit on the new photo labelled ok."""
    from augmentface.stages.blend import BlendConfig, run_blend
    from augmentface.stages.render import RenderConfig, run_render

    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("a.png", "b.png"):
        Image.fromarray(astronaut).save(folder / name)
    assert _cli("fit3dmm", str(folder), "-q").exit_code == 0
    assert _cli("synth-au", "--au", "12=3", "-q").exit_code == 0
    Image.fromarray(np.roll(astronaut, 40, axis=1)).save(folder / "a.png")  # replaced
    report = run_render(RenderConfig(quiet=True))
    assert (report.done, dict(report.failed)) == (1, {"source_changed": 1})
    Image.fromarray(np.roll(astronaut, 40, axis=1)).save(folder / "b.png")  # after render
    report = run_blend(BlendConfig(quiet=True, max_source_residual=None))
    assert (report.done, dict(report.failed)) == (0, {"source_changed": 1})
    labels = pd.read_csv(tmp_path / "augment/output/labels.csv")
    assert list(labels.status) == ["source_changed"] and labels.output_path.isna().all()
    assert not list((tmp_path / "augment/output/images").glob("*"))


def test_fit3dmm_never_opens_a_source_outside_the_dataset_root(tmp_path, astronaut, monkeypatch):
    root = tmp_path / "root"
    root.mkdir()
    Image.fromarray(astronaut).save(root / "a.png")
    pd.DataFrame({"path": ["a.png", "/etc/passwd"]}).to_csv(root / "labels.csv", index=False)
    work = str(tmp_path / "w")
    result = _cli("import", "folder", str(root), "--labels-csv", "labels.csv", "-w", work, "-q")
    assert result.exit_code == 1, result.output  # a row failed: outside the root
    opened = []
    real = fit_stage.read_frame
    monkeypatch.setattr(fit_stage, "read_frame", lambda p, **k: opened.append(p) or real(p, **k))
    assert _cli("fit3dmm", "-w", work, "-q").exit_code == 1
    fits = read_manifest(tmp_path / "w" / "fits.parquet", FITS, run_first="").df
    assert dict(zip(fits.image_path, fits.status, strict=True)) == {
        str(root / "a.png"): "ok",
        "/etc/passwd": "outside_root",
    }
    assert opened == [str(root / "a.png")]


def test_a_layout_copies_only_files_the_run_wrote(tmp_path, astronaut_file, monkeypatch):
    from augmentface.manifest import write_manifest

    monkeypatch.chdir(tmp_path)
    keep = ("--max-source-residual", "9")
    result = _cli("run", str(astronaut_file), "--au", "AU12=3", "--no-sheet", "-q", *keep)
    assert result.exit_code == 0
    path = tmp_path / "augment/output/labels.parquet"
    labels = read_manifest(path, LABELS, run_first="")
    stranger = tmp_path / "secret.txt"
    stranger.write_text("not an output")
    tampered = labels.df.assign(output_path=str(stranger))
    meta = labels.meta
    write_manifest(path, tampered, LABELS, params=meta["params"], seed=meta["seed"],
                   face_model_id=meta["face_model_id"])  # fmt: skip
    assert _cli("export-layout", "--layout", "flat", "-q").exit_code == 0
    layout = tmp_path / "augment/output/flat"
    assert not any("not an output" in p.read_text(errors="ignore") for p in layout.rglob("*.*"))


def _layout_texts(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*.json"))}


def test_render_and_blend_in_one_pass_write_what_the_two_stages_write(tmp_path, astronaut_file):
    """Issue 12: `run` renders and blends in one pass (`blend --from-targets`) with no crop
    files, and writes the bytes, labels, layout landmarks and evaluation of render then blend
    (`run --keep-renders`)."""
    fused, kept = tmp_path / "fused", tmp_path / "kept"
    common = ["--va", "-0.5,0.3", "--va", "0.6,0.2", "--no-sheet", "-q"]
    common += ["--max-source-residual", "9"]
    assert _cli("run", str(astronaut_file), "-w", str(fused), *common).exit_code == 0
    result = _cli("run", str(astronaut_file), "-w", str(kept), "--keep-renders", *common)
    assert result.exit_code == 0, result.output
    assert not (fused / "renders").exists() and not (fused / "renders.parquet").exists()
    assert len(list((kept / "renders").iterdir())) == 2
    assert len(_outputs(kept)) == 2 and _outputs(fused) == _outputs(kept)
    a, b = (
        pd.read_csv(w / "output" / "labels.csv").drop(columns="output_path") for w in (fused, kept)
    )
    pd.testing.assert_frame_equal(a, b)
    for work in (fused, kept):
        result = _cli("export-layout", "-w", str(work), "--layout", "afew-va", "-q")
        assert result.exit_code == 0, result.output
        assert _cli("evaluate", "-w", str(work), "-q").exit_code == 0
    a, b = (_layout_texts(w / "output" / "afew-va") for w in (fused, kept))
    assert len(a) == 1 and a == b and '"landmarks": [\n' in next(iter(a.values()))
    a, b = (
        pd.read_csv(w / "output" / "evaluation.csv").drop(columns="output_path")
        for w in (fused, kept)
    )
    assert (a.status == "ok").all()
    pd.testing.assert_frame_equal(a, b)


def test_render_options_of_blend_need_from_targets(tmp_path):
    result = _cli("blend", "-w", str(tmp_path), "--no-details")
    assert result.exit_code == 2 and "--from-targets" in result.output
