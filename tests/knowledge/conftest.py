from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
CLINC = SHARED_DATA / "clinc150" / "train_val.json"
BITEXT = SHARED_DATA / "bitext" / "Bitext_Sample_Customer_Support_Training_Dataset.csv"


@pytest.fixture(scope="session")
def clinc_slice(tmp_path_factory):
    """20 intents of CLINC150 (train, val, out-of-scope), small enough for CI."""
    import json

    data = json.loads(CLINC.read_text())
    intents = sorted({label for _, label in data["train"]})[:20]

    def keep(rows: list[list[str]]) -> list[list[str]]:
        return [r for r in rows if r[1] in intents]

    sliced = {
        "train": keep(data["train"]),
        "val": keep(data["val"]),
        "oos_train": data["oos_train"][:60],
        "oos_val": data["oos_val"][:40],
    }
    path = tmp_path_factory.mktemp("clinc") / "slice.json"
    path.write_text(json.dumps(sliced))
    return path
