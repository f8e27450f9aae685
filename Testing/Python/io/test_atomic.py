"""Atomic writes: no partial file on error, no silent overwrite, umask-respecting permissions."""
from __future__ import annotations

import os
import stat

import pytest

from breastlesionseg.errors import InputError
from breastlesionseg.io.atomic import atomic_path, write_atomic, write_text_atomic


def test_refuses_overwrite_and_keeps_original(tmp_path):
    target = tmp_path / "a.json"
    write_text_atomic(target, "one")
    with pytest.raises(InputError, match="refusing to overwrite"):
        write_text_atomic(target, "two")
    assert target.read_text(encoding="utf-8") == "one"
    write_text_atomic(target, "two", overwrite=True)
    assert target.read_text(encoding="utf-8") == "two"


def test_error_leaves_no_file_and_no_temporary(tmp_path):
    target = tmp_path / "x.seg.nrrd"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            assert tmp.name.endswith(".seg.nrrd")
            tmp.write_text("partial")
            raise RuntimeError("writer failed")
    assert list(tmp_path.iterdir()) == []


def test_permissions_follow_umask(tmp_path):
    old = os.umask(0o022)
    try:
        path = write_text_atomic(tmp_path / "p.txt", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_a_file_created_by_another_writer_meanwhile_is_not_replaced(tmp_path):
    """Two writers of one new file: the one that finishes second fails instead of replacing the first's."""
    import pytest

    from breastlesionseg.errors import InputError
    from breastlesionseg.io.atomic import atomic_path

    target = tmp_path / "mask.nii.gz"
    with pytest.raises(InputError, match="created by another process"):
        with atomic_path(target) as tmp:
            tmp.write_text("second writer")
            target.write_text("first writer")  # the other run finished while this one was writing
    assert target.read_text(encoding="utf-8") == "first writer"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mask.nii.gz"]  # no temporary file left


def test_a_full_disk_is_named_and_the_existing_file_kept(tmp_path):
    import errno

    target = tmp_path / "weights.pt"
    target.write_bytes(b"previous")

    def full(path):
        path.write_bytes(b"half")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(InputError, match="no space left on the device while writing .*weights.pt.*existing file is unchanged"):
        write_atomic(target, full, overwrite=True)
    assert target.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["weights.pt"]


def test_a_wrapped_write_error_on_a_full_device_is_reported_as_full(tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    target = tmp_path / "image.nii.gz"

    def itk_failure(path):  # SimpleITK / torch.save wrap the system error in a RuntimeError
        raise RuntimeError("Exception thrown in SimpleITK ImageFileWriter_Execute: could not write")

    with pytest.raises(RuntimeError, match="could not write"):  # a device with space: the error passes through
        write_atomic(target, itk_failure)
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(10 << 30, 10 << 30, 4096))
    with pytest.raises(InputError, match="no space left .* nothing was written"):
        write_atomic(target, itk_failure)
    assert not any(tmp_path.iterdir())
