"""Direct reads (issue 21): Scorer.transform_files / transform_table read Parquet and ORC in the
Python workers and give the same rows and schema as transform() over Spark's own reader.

Local Spark (local[2]) over local files; the same over MiniDFS through hdfs-native is in
integration/test_scorer_cluster.py.
"""

import os
from urllib.parse import unquote

import numpy as np
import pyarrow as pa
import pyarrow.orc as orc
import pyarrow.parquet as pq
import pytest
from _faulty_fs import FileProxy

from hdfs_models.testing.pytest_plugin import require_module

require_module("tensorflow", "tf")
require_module("pyspark", "spark")

from hdfs_models.store._files import CorruptFileError, FileLayout, MissingFileError, read_groups  # noqa: E402
from hdfs_models.testing import save_dense  # noqa: E402
from scoring import Scorer  # noqa: E402
from scoring._files import partition_values, plan_direct_read, spread  # noqa: E402
from scoring.errors import InputFileError  # noqa: E402

N_IN = 12


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return save_dense(str(tmp_path_factory.mktemp("direct-model") / "3"), n_in=N_IN)


def _table(start, n, rng):
    features = rng.normal(size=(n, N_IN)).astype(np.float32)
    return pa.table(
        {
            "id": pa.array(np.arange(start, start + n, dtype=np.int64)),
            "features": pa.array(list(features), type=pa.list_(pa.float32())),
            "note": pa.array([f"row {i}" for i in range(start, start + n)]),
        }
    )


def _dataset(root, fmt="parquet"):
    """A partitioned data set: day=<int>/kind=<text, escaped, or Hive's null>/, several files and row groups."""
    rng = np.random.default_rng(7)
    start = 0
    for day, kind, files in ((1, "a b", 2), (2, "x", 1), (2, "__HIVE_DEFAULT_PARTITION__", 1)):
        folder = os.path.join(root, f"day={day}", f"kind={kind.replace(' ', '%20')}")
        os.makedirs(folder)
        for f in range(files):
            table = _table(start, 130 + 17 * f, rng)
            start += table.num_rows
            path = os.path.join(folder, f"part-{f:05d}.{fmt}")
            if fmt == "parquet":
                pq.write_table(table, path, row_group_size=40)
            else:
                orc.write_table(table, path, stripe_size=4096)
    with open(os.path.join(root, "_SUCCESS"), "w"):
        pass
    return start


def _rows(df):
    return sorted(tuple(r) for r in df.collect())


@pytest.mark.parametrize("fmt", ["parquet", "orc"])
def test_direct_read_gives_the_rows_and_schema_of_spark_s_reader(spark, model, tmp_path, fmt):
    root = str(tmp_path / "data")
    rows = _dataset(root, fmt)
    scorer = Scorer(model, keep_cols=["id", "note", "day", "kind"], returns="probabilities")
    direct = scorer.transform_files(spark, root, fmt)
    through_spark = scorer.transform(spark.read.format(fmt).load(root))
    assert direct.schema == through_spark.schema
    got, want = _rows(direct), _rows(through_spark)
    assert len(got) == rows
    assert [r[:4] for r in got] == [r[:4] for r in want]  # ids, notes and partition values, nulls included
    assert {r[3] for r in got} == {"a b", "x", None} and {r[2] for r in got} == {1, 2}
    np.testing.assert_allclose([r[4] for r in got], [r[4] for r in want], rtol=1e-5, atol=1e-6)  # batches differ
    metrics = scorer.metrics()
    assert metrics["rows"] == 2 * rows  # both scored; the direct read counted its bytes and seconds
    assert metrics["read_bytes"] > 0 and metrics["read_seconds"] > 0 and metrics["stages"]["read"] > 0


def test_row_groups_spread_over_at_least_the_default_parallelism(spark, model, tmp_path):
    root = str(tmp_path / "data")
    _dataset(root)
    from scoring._arrow import describe_spark_field

    scorer = Scorer(model, keep_cols=["id"])

    source = spark.read.parquet(root)
    bound = scorer._runner().planned([describe_spark_field(f) for f in source.schema.fields])
    read = plan_direct_read(source, "parquet", bound, parallelism=5)
    assert len(read.tasks) == 5
    assert read.file_columns == ("id", "features")  # only what the plan reads; note is left in the files
    groups = sorted((p.url, g) for task in read.tasks for p in task for g in p.groups)
    files = sorted(unquote(uri) for uri in source.inputFiles())
    want = sorted((url, g) for url in files for g in range(pq.ParquetFile(url[len("file:") :]).num_row_groups))
    assert groups == want and len(want) == 16  # every row group once: 130 or 147 rows in groups of 40
    rows = [sum(40 for p in task for _ in p.groups) for task in read.tasks]
    assert max(rows) - min(rows) <= 80  # balanced to within two groups


def test_spread_is_balanced_largest_first():
    sizes = [(100, 100, 10), (50, 50, 50, 50)]
    layouts = [FileLayout(f"f{i}", "parquet", rows, (1,) * len(rows), None) for i, rows in enumerate(sizes)]
    shares = spread(layouts, 3)
    loads = sorted(sum(layouts[i].rows[g] for i, g in share) for share in shares)
    assert loads == [110, 150, 150]  # 100+50 | 100+50 | 50+50+10: largest first onto the lightest task
    assert sorted(u for share in shares for u in share) == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2), (1, 3)]
    assert len(spread(layouts, 50)) == 7  # never more tasks than row groups


def test_partition_values_undo_spark_s_escaping_and_hive_s_null():
    url = "hdfs://nn/t/day=2/kind=a%20b%2Fc/region=__HIVE_DEFAULT_PARTITION__/part-0.parquet"
    assert partition_values(url, ["day", "kind", "region"]) == {"day": "2", "kind": "a b/c", "region": None}
    assert partition_values("hdfs://nn/t/x=1/part-0.parquet", ["day"]) == {}


def test_files_whose_schemas_disagree_name_the_file(spark, model, tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    rng = np.random.default_rng(1)
    pq.write_table(_table(0, 20, rng), root / "part-0.parquet")
    other = _table(20, 20, rng).set_column(0, "id", pa.array([str(i) for i in range(20)]))
    pq.write_table(other, root / "part-1.parquet")
    with pytest.raises(InputFileError, match=r"part-1\.parquet.*'id' is string, but int64") as caught:
        Scorer(model, keep_cols=["id"]).transform_files(spark, str(root))
    assert caught.value.reason == "schema" and caught.value.path.endswith("part-1.parquet")


def test_a_corrupt_file_is_named(spark, model, tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    pq.write_table(_table(0, 20, np.random.default_rng(1)), root / "part-0.parquet")
    (root / "part-9.parquet").write_bytes(b"PAR1 this is not a parquet file")
    with pytest.raises(CorruptFileError, match=r"part-9\.parquet: not a readable parquet file"):
        Scorer(model, keep_cols=["id"]).transform_files(spark, str(root))


def test_a_file_deleted_after_the_listing_is_named(spark, model, tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    rng = np.random.default_rng(1)
    for i in range(2):
        pq.write_table(_table(20 * i, 20, rng), root / f"part-{i}.parquet")
    scored = Scorer(model, keep_cols=["id"]).transform_files(spark, str(root))  # planned: files listed
    os.remove(root / "part-1.parquet")
    with pytest.raises(Exception, match=r"MissingFileError.*part-1\.parquet: the file is gone"):
        scored.collect()


class _FlakyFile(FileProxy):
    """A file whose reads fail ``fails[0]`` times (a DataNode stopped mid-read), then work."""

    def __init__(self, inner, fails):
        super().__init__(inner)
        self.fails = fails

    def read(self, *args):
        if self.fails[0] > 0 and self.inner.tell() > 4:  # past the magic: reading pages
            self.fails[0] -= 1
            raise ConnectionResetError("connection reset by DataNode 127.0.0.1:9866")
        return self.inner.read(*args)


def test_a_read_failing_mid_row_group_is_retried_without_repeating_rows(tmp_path, monkeypatch):
    from fsspec.implementations.local import LocalFileSystem

    import hdfs_models.store._files as files

    path = str(tmp_path / "part-0.parquet")
    pq.write_table(_table(0, 100, np.random.default_rng(3)), path, row_group_size=25)
    fails = [0]
    local = LocalFileSystem()

    class Flaky(LocalFileSystem):
        def open(self, p, mode="rb", **kw):
            return _FlakyFile(local.open(p, mode), fails)

    monkeypatch.setattr(files, "open_store", lambda url, options=None: (Flaky(), url))
    reads = []
    batches = read_groups(path, "parquet", [0, 1, 2, 3], ["id"], on_read=lambda *a: reads.append(a),
                          sleep=lambda s: None)  # fmt: skip
    first = next(batches)
    fails[0] = 1  # the next group's read meets a reset connection once
    rest = list(batches)
    ids = [i for b in [first, *rest] for i in b.column("id").to_pylist()]
    assert ids == list(range(100)) and fails[0] == 0  # retried: every row once, in order
    assert [r[0] for r in reads] == [0, 1, 2, 3]


def test_a_missing_file_is_not_retried(tmp_path):
    calls = []
    with pytest.raises(MissingFileError, match="gone"):
        list(read_groups(str(tmp_path / "nope.parquet"), "parquet", [0], ["id"], sleep=calls.append))
    assert calls == []


@pytest.mark.parametrize("kind", ["parquet", "orc", "hive-orc"])
def test_a_partitioned_table_stored_as_parquet_or_orc_is_read_directly(spark, model, tmp_path, kind):
    """A data source table (``USING parquet|orc``) and a Hive serde table (``STORED AS ORC``),
    partitioned: the files and partitions come from the metastore, the rows equal Spark's reader's."""
    rng = np.random.default_rng(11)
    rows = [(i, int(i % 3), rng.normal(size=N_IN).astype(np.float32).tolist()) for i in range(90)]
    df = spark.createDataFrame(rows, "id long, bucket int, features array<float>")
    name = f"direct_{kind.replace('-', '_')}_{os.getpid()}"
    if kind == "hive-orc":
        spark.sql(f"CREATE TABLE {name} (id BIGINT, features ARRAY<FLOAT>) PARTITIONED BY (bucket INT) STORED AS ORC")
        df.createOrReplaceTempView(f"{name}_src")
        spark.sql("SET hive.exec.dynamic.partition.mode=nonstrict")
        spark.sql(f"INSERT INTO {name} PARTITION (bucket) SELECT id, features, bucket FROM {name}_src")
        described = {
            str(r[0]).strip().lower(): str(r[1]) for r in spark.sql(f"DESCRIBE TABLE EXTENDED {name}").collect()
        }
        assert "orc" in described.get("serde library", "").lower(), described  # a Hive serde table, not USING orc
    else:
        df.write.partitionBy("bucket").format(kind).saveAsTable(name)
    try:
        assert len(spark.sql(f"SHOW PARTITIONS {name}").collect()) == 3
        scorer = Scorer(model, keep_cols=["id", "bucket"])
        direct, through_spark = scorer.transform_table(spark, name), scorer.transform(spark.table(name))
        assert direct.schema == through_spark.schema
        assert _rows(direct) == _rows(through_spark) and len(_rows(direct)) == 90
    finally:
        spark.sql(f"DROP TABLE {name}")


def test_a_table_in_another_format_is_refused_naming_it(spark, model):
    name = f"direct_csv_{os.getpid()}"
    spark.createDataFrame([(1, [0.0] * N_IN)], "id long, features array<float>").write.format("json").saveAsTable(name)
    try:
        with pytest.raises(InputFileError, match=f"table {name} is not stored as Parquet or ORC"):
            Scorer(model).transform_table(spark, name)
    finally:
        spark.sql(f"DROP TABLE {name}")


def test_nested_arrays_read_directly_equal_spark_s_reader(spark, tmp_path):
    """array<array<array<float>>> and array<double> inputs (a [None, 2, 3, 1] and a [None, 2] tensor),
    several files and row groups: the direct read scores what transform over Spark's reader does."""
    from hdfs_models.testing import predict_in_process, save_multi

    model = save_multi(str(tmp_path / "multi"))
    rng = np.random.default_rng(5)
    root = tmp_path / "nested"
    root.mkdir()
    images, extras, start = [], [], 0
    for f, n in enumerate((90, 61)):
        image = rng.normal(size=(n, 2, 3, 1)).astype(np.float32)
        extra = rng.normal(size=(n, 2))
        table = pa.table(
            {
                "id": pa.array(np.arange(start, start + n, dtype=np.int64)),
                "img": pa.array(image.tolist(), type=pa.list_(pa.list_(pa.list_(pa.float32())))),
                "extra": pa.array(extra.tolist(), type=pa.list_(pa.float64())),
            }
        )
        pq.write_table(table, str(root / f"part-{f}.parquet"), row_group_size=25)
        images.append(image)
        extras.append(extra)
        start += n
    scorer = Scorer(model, input_cols={"image": "img"}, returns="all", keep_cols=["id"])
    direct = scorer.transform_files(spark, str(root))
    through_spark = scorer.transform(spark.read.parquet(str(root)))
    assert direct.schema == through_spark.schema
    got, want = _rows(direct), _rows(through_spark)
    assert len(got) == start and [r[0] for r in got] == list(range(start))
    for column in range(1, len(got[0])):
        if isinstance(got[0][column], (list, float)):
            np.testing.assert_allclose([r[column] for r in got], [r[column] for r in want], rtol=1e-5, atol=1e-6)
        else:
            assert [r[column] for r in got] == [r[column] for r in want]
    expected = predict_in_process(model, image=np.concatenate(images), extra=np.concatenate(extras))
    first_output = sorted(expected)[0]
    field = direct.schema.fieldNames().index(first_output) if first_output in direct.schema.fieldNames() else None
    assert field is not None, (direct.schema.fieldNames(), sorted(expected))
    np.testing.assert_allclose([r[field] for r in got], expected[first_output], rtol=1e-5, atol=1e-5)
