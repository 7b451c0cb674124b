package io.hdfsmodels.jvm;

import java.io.File;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;
import org.apache.spark.SparkFiles;
import org.tensorflow.Result;
import org.tensorflow.SavedModelBundle;
import org.tensorflow.SessionFunction;
import org.tensorflow.Signature;
import org.tensorflow.Tensor;
import org.tensorflow.ndarray.Shape;
import org.tensorflow.ndarray.buffer.DataBuffers;
import org.tensorflow.proto.ConfigProto;
import org.tensorflow.proto.DataType;
import org.tensorflow.types.TFloat32;

/**
 * One SavedModel per executor JVM, loaded on first use and shared by the executor's task threads.
 *
 * <p>The model directory is the {@code --archives} alias ({@code model}): looked up as given, then
 * under {@link SparkFiles#getRootDirectory()} (where local mode unpacks archives). The serving
 * signature's only input (float32, shape [-1, width]) and its output are read from the bundle, so
 * no tensor name is written here. TensorFlow's session is thread-safe; its thread pools are
 * process-wide, which is why the thread counts are chosen once, by the driver (see {@link
 * ScoreJob}).
 */
final class Model {
  static final String SIGNATURE = "serving_default";

  private static final Map<String, Model> LOADED = new HashMap<>();

  final String dir;
  final String inputKey;
  final String outputKey;
  final int width;
  final int intraOp;
  final int interOp;
  private final SavedModelBundle bundle;
  private final SessionFunction function;

  private Model(String dir, int intraOp, int interOp) {
    this.dir = dir;
    this.intraOp = intraOp;
    this.interOp = interOp;
    ConfigProto config =
        ConfigProto.newBuilder()
            .setIntraOpParallelismThreads(intraOp)
            .setInterOpParallelismThreads(interOp)
            .build();
    this.bundle = SavedModelBundle.loader(dir).withTags("serve").withConfigProto(config).load();
    this.function = bundle.function(SIGNATURE);
    Signature signature = function.signature();
    if (signature.inputNames().size() != 1) {
      throw new IllegalArgumentException(
          dir + ": signature " + SIGNATURE + " has inputs " + signature.inputNames()
              + "; this job feeds one float32 [-1, width] input");
    }
    this.inputKey = signature.inputNames().iterator().next();
    Signature.TensorDescription input = signature.getInputs().get(inputKey);
    if (input.dataType != DataType.DT_FLOAT || input.shape.numDimensions() != 2 || input.shape.size(1) < 1) {
      throw new IllegalArgumentException(
          dir + ": input '" + inputKey + "' is " + input.dataType + " " + input.shape
              + "; this job feeds float32 [-1, width]");
    }
    this.width = (int) input.shape.size(1);
    this.outputKey = pickOutput(dir, signature);
    System.err.printf(
        "tf-java-job: loaded %s (TensorFlow %s): %s '%s' %s -> '%s'; intra-op %d, inter-op %d%n",
        dir, org.tensorflow.TensorFlow.version(), SIGNATURE, inputKey, input.shape, outputKey,
        intraOp, interOp);
  }

  /** The only output, or the one named {@code probabilities} when there are several. */
  private static String pickOutput(String dir, Signature signature) {
    if (signature.outputNames().size() == 1) {
      return signature.outputNames().iterator().next();
    }
    if (signature.outputNames().contains("probabilities")) {
      return "probabilities";
    }
    throw new IllegalArgumentException(
        dir + ": signature " + SIGNATURE + " has outputs " + signature.outputNames()
            + " and none is the only one or 'probabilities'");
  }

  /** This JVM's model for the alias or path {@code where}, loaded once. */
  static synchronized Model get(String where, int intraOp, int interOp) {
    String dir = locate(where);
    return LOADED.computeIfAbsent(dir, d -> new Model(d, intraOp, interOp));
  }

  /** The local SavedModel directory for an {@code --archives} alias or a path. */
  static String locate(String where) {
    File given = new File(where);
    File[] candidates = {given, new File(SparkFiles.getRootDirectory(), where)};
    for (File candidate : candidates) {
      File found = savedModelIn(candidate);
      if (found != null) {
        return found.getAbsolutePath();
      }
    }
    throw new IllegalArgumentException(
        "no SavedModel at '" + where + "': looked in " + Arrays.toString(candidates)
            + " (ship it with spark-submit --archives hdfs://.../model.tar#" + where
            + ", or pass a local path)");
  }

  /** {@code dir} itself, or its only subdirectory, when it holds saved_model.pb; else null. */
  private static File savedModelIn(File dir) {
    if (new File(dir, "saved_model.pb").isFile()) {
      return dir;
    }
    File[] children = dir.listFiles(File::isDirectory);
    if (children != null && children.length == 1 && new File(children[0], "saved_model.pb").isFile()) {
      return children[0];
    }
    return null;
  }

  /**
   * The argmax class of each of {@code rows} rows, laid out row after row in {@code flat} ({@code
   * rows * width} floats).
   */
  int[] classes(float[] flat, int rows) {
    Shape shape = Shape.of(rows, width);
    try (TFloat32 x = TFloat32.tensorOf(shape, DataBuffers.of(flat, true, false).narrow(shape.size()));
        Result result = function.call(Map.of(inputKey, (Tensor) x))) {
      TFloat32 y = (TFloat32) result.get(outputKey).orElseThrow();
      int classes = (int) y.shape().size(1);
      float[] out = new float[rows * classes];
      y.copyTo(DataBuffers.of(out, false, false));
      int[] best = new int[rows];
      for (int r = 0; r < rows; r++) {
        int base = r * classes;
        int arg = 0;
        for (int c = 1; c < classes; c++) {
          if (out[base + c] > out[base + arg]) {
            arg = c;
          }
        }
        best[r] = arg;
      }
      return best;
    }
  }
}
