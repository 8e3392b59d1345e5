"""training/experiments/tables.py: the FID note names each dataset's set size."""

from training.experiments import tables


def test_fid_note_names_each_datasets_set_size():
    rows = [dict(config={"dataset": "shapes"}, fid_num_images=2000),
            dict(config={"dataset": "digits"}, fid_num_images=364),
            dict(config={"dataset": "shapes"}, fid_num_images=2000)]
    assert "N = 2000 (shapes) / 364 (digits) eval images" in tables.fid_note(rows)
    assert "N = 2000 eval images" in tables.fid_note(rows[:1])
