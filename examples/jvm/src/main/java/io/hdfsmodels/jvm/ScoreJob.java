package io.hdfsmodels.jvm;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.NoSuchElementException;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.apache.spark.SparkConf;
import org.apache.spark.api.java.function.MapPartitionsFunction;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Encoders;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.api.java.UDF1;
import org.apache.spark.sql.expressions.UserDefinedFunction;
import org.apache.spark.sql.functions;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;

/**
 * The production article's job on TF-Java 1.1: Parquet of {@code id} + {@code features}
 * (array&lt;float&gt;) in, {@code id} + {@code prediction} (the argmax class, int) Parquet out.
 *
 * <pre>
 * spark-submit --class io.hdfsmodels.jvm.ScoreJob --archives hdfs://nn/models/mnist/_archives/3-ab12.tar#model \
 *   --jars TF-JAVA-JARS tf-java-spark-job-1.0.jar --input IN --output OUT [--mode partitions|udf|partitions,udf]
 *   [--model model] [--batch-size 1024] [--id id] [--features features] [--intra-op N] [--inter-op N]
 * </pre>
 *
 * <p>Two ways, as the article had them: {@code udf}, a per-row UDF (one session call per row), and
 * {@code partitions}, {@code mapPartitions} with batches of {@code --batch-size} rows. With two
 * modes each writes {@code OUT/<mode>}. Each mode prints one JSON line on stdout: rows, seconds
 * (read, score, write and count of the output, as the Python job's summary counts them), rows/s.
 *
 * <p>Threads. TensorFlow's intra-op and inter-op pools are per process, sized by the first session,
 * and one model serves all of an executor's concurrent tasks. The default mirrors the Python scorer
 * (one model per Python worker, one task per worker, intra-op = spark.task.cpus, inter-op = 1): here
 * intra-op = spark.task.cpus and inter-op = the executor's task slots (its cores / spark.task.cpus),
 * so each concurrent task has a thread to run its graph on and the process uses as many cores as
 * the Python workers together do. {@code --intra-op} and {@code --inter-op} override it.
 */
public final class ScoreJob {
  private ScoreJob() {}

  public static void main(String[] argv) {
    Map<String, String> args = parse(argv);
    SparkSession spark = SparkSession.builder().appName("tf-java-spark-job").getOrCreate();
    try {
      SparkConf conf = spark.sparkContext().getConf();
      int taskCpus = conf.getInt("spark.task.cpus", 1);
      int slots = Math.max(1, executorCores(conf, spark.sparkContext().master()) / taskCpus);
      int intra = Integer.parseInt(args.getOrDefault("intra-op", String.valueOf(taskCpus)));
      int inter = Integer.parseInt(args.getOrDefault("inter-op", String.valueOf(slots)));
      Settings s = new Settings(args.getOrDefault("model", "model"), intra, inter,
          Integer.parseInt(args.getOrDefault("batch-size", "1024")));
      String[] modes = args.getOrDefault("mode", "partitions").split(",");
      for (String mode : modes) {
        String out = modes.length == 1 ? args.get("output") : args.get("output") + "/" + mode;
        run(spark, s, mode, args, out);
      }
    } finally {
      spark.stop();
    }
  }

  private static void run(SparkSession spark, Settings s, String mode, Map<String, String> args, String out) {
    long started = System.nanoTime();
    String id = args.getOrDefault("id", "id");
    String features = args.getOrDefault("features", "features");
    Dataset<Row> input = spark.read().parquet(args.get("input")).select(id, features);
    Dataset<Row> scored;
    if (mode.equals("udf")) {
      UserDefinedFunction predict = functions.udf(new RowUdf(s), DataTypes.IntegerType);
      scored = input.select(functions.col(id), predict.apply(functions.col(features)).as("prediction"));
    } else if (mode.equals("partitions")) {
      StructType schema = new StructType(new StructField[] {
        input.schema().apply(id), DataTypes.createStructField("prediction", DataTypes.IntegerType, false)
      });
      scored = input.mapPartitions(new Batches(s), Encoders.row(schema));
    } else {
      throw new IllegalArgumentException("--mode must be udf or partitions, not '" + mode + "'");
    }
    scored.write().mode("overwrite").parquet(out);
    long rows = spark.read().parquet(out).count();
    double seconds = (System.nanoTime() - started) / 1e9;
    System.out.println(String.format(Locale.ROOT,
        "{\"mode\": \"%s\", \"rows\": %d, \"seconds\": %.3f, \"rows_per_s\": %.1f, \"batch_size\": %d, "
            + "\"intra_op\": %d, \"inter_op\": %d, \"output\": \"%s\"}",
        mode, rows, seconds, rows / seconds, mode.equals("udf") ? 1 : s.batchSize, s.intraOp, s.interOp, out));
  }

  /**
   * The cores of one executor: {@code spark.executor.cores}, else what the master says ({@code
   * local[N]}, {@code local[*]}, {@code local-cluster[E,C,M]}), else 1.
   */
  static int executorCores(SparkConf conf, String master) {
    if (conf.contains("spark.executor.cores")) {
      return conf.getInt("spark.executor.cores", 1);
    }
    Matcher local = Pattern.compile("local\\[(\\d+|\\*)(,\\d+)?\\]").matcher(master);
    if (local.matches()) {
      return local.group(1).equals("*") ? Runtime.getRuntime().availableProcessors()
          : Integer.parseInt(local.group(1));
    }
    Matcher cluster = Pattern.compile("local-cluster\\[\\s*\\d+\\s*,\\s*(\\d+)\\s*,.*\\]").matcher(master);
    return cluster.matches() ? Integer.parseInt(cluster.group(1)) : 1;
  }

  private static Map<String, String> parse(String[] argv) {
    Map<String, String> args = new HashMap<>();
    for (int i = 0; i < argv.length; i += 2) {
      if (!argv[i].startsWith("--") || i + 1 >= argv.length) {
        throw new IllegalArgumentException("expected --option value pairs, got '" + argv[i] + "'");
      }
      args.put(argv[i].substring(2), argv[i + 1]);
    }
    for (String required : List.of("input", "output")) {
      if (!args.containsKey(required)) {
        throw new IllegalArgumentException("--" + required + " is required");
      }
    }
    return args;
  }

  /** What every task needs to find and run the model (the driver decides, executors read). */
  static final class Settings implements java.io.Serializable {
    final String model;
    final int intraOp;
    final int interOp;
    final int batchSize;

    Settings(String model, int intraOp, int interOp, int batchSize) {
      this.model = model;
      this.intraOp = intraOp;
      this.interOp = interOp;
      this.batchSize = batchSize;
    }

    Model load() {
      return Model.get(model, intraOp, interOp);
    }
  }

  /**
   * Copy one row's features into {@code flat} at row {@code slot}, checking its length; {@code id}
   * names the row in errors (a UDF does not see it: null).
   */
  static void copyFeatures(Object value, Model model, float[] flat, int slot, Object id) {
    String row = id == null ? "a row" : "row id=" + id;
    if (value == null) {
      throw new IllegalArgumentException(row + ": features is null");
    }
    scala.collection.Seq<?> seq = (scala.collection.Seq<?>) value;
    if (seq.length() != model.width) {
      throw new IllegalArgumentException(row + ": features has " + seq.length()
          + " values; input '" + model.inputKey + "' of " + model.dir + " takes " + model.width);
    }
    int base = slot * model.width;
    for (int j = 0; j < model.width; j++) {
      flat[base + j] = ((Number) seq.apply(j)).floatValue();
    }
  }

  /** The per-row UDF: one session call per row. */
  static final class RowUdf implements UDF1<scala.collection.Seq<?>, Integer> {
    private final Settings settings;
    private transient Model model;
    private transient float[] flat;

    RowUdf(Settings settings) {
      this.settings = settings;
    }

    @Override
    public Integer call(scala.collection.Seq<?> features) {
      if (model == null) {
        model = settings.load();
        flat = new float[model.width];
      }
      copyFeatures(features, model, flat, 0, null);
      return model.classes(flat, 1)[0];
    }
  }

  /** {@code mapPartitions}: batches of {@code batchSize} rows, scored lazily as Spark pulls rows. */
  static final class Batches implements MapPartitionsFunction<Row, Row> {
    private final Settings settings;

    Batches(Settings settings) {
      this.settings = settings;
    }

    @Override
    public Iterator<Row> call(Iterator<Row> rows) {
      Model model = settings.load();
      float[] flat = new float[settings.batchSize * model.width];
      List<Object> ids = new ArrayList<>(settings.batchSize);
      return new Iterator<Row>() {
        private int[] classes = new int[0];
        private int next;

        @Override
        public boolean hasNext() {
          if (next < classes.length) {
            return true;
          }
          ids.clear();
          while (ids.size() < settings.batchSize && rows.hasNext()) {
            Row row = rows.next();
            copyFeatures(row.get(1), model, flat, ids.size(), row.get(0));
            ids.add(row.get(0));
          }
          classes = ids.isEmpty() ? new int[0] : model.classes(flat, ids.size());
          next = 0;
          return classes.length > 0;
        }

        @Override
        public Row next() {
          if (!hasNext()) {
            throw new NoSuchElementException();
          }
          int i = next++;
          return RowFactory.create(ids.get(i), classes[i]);
        }
      };
    }
  }
}
