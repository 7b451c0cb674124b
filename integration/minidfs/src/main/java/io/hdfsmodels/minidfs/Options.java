package io.hdfsmodels.minidfs;

import java.io.File;
import java.util.ArrayList;
import java.util.List;

/** Command-line options of the launcher; every option has a test-friendly default. */
final class Options {
  int dataNodes = 3;
  int replication = 3;
  long blockSize = 1L << 20;
  boolean permissions = true;
  boolean ha = false;
  /** NodeManagers of a MiniYARNCluster started beside the DFS (0: no YARN). */
  int yarnNodeManagers = 0;
  /** Memory (MB) each NodeManager offers; sized so two executors and one AM fit, not three executors. */
  int yarnNodeMemoryMb = 5120;
  String baseDir;
  String confDir;
  /** Kerberos (Kerberos.java): its dir, or null for simple authentication. */
  String kerberosDir;
  String protection = "authentication";
  List<String> users = new ArrayList<>();
  /** MiniKMS (Kms.java): a file holding its classpath, or null for no KMS; and the key it creates. */
  String kmsClasspath;
  String kmsKey = "models";

  static Options parse(String[] args) {
    Options o = new Options();
    boolean replicationSet = false;
    for (int i = 0; i < args.length; i++) {
      String a = args[i];
      switch (a) {
        case "--datanodes":
          o.dataNodes = Integer.parseInt(args[++i]);
          break;
        case "--replication":
          o.replication = Integer.parseInt(args[++i]);
          replicationSet = true;
          break;
        case "--block-size":
          o.blockSize = Long.parseLong(args[++i]);
          break;
        case "--no-permissions":
          o.permissions = false;
          break;
        case "--ha":
          o.ha = true;
          break;
        case "--yarn-nodemanagers":
          o.yarnNodeManagers = Integer.parseInt(args[++i]);
          break;
        case "--yarn-node-memory-mb":
          o.yarnNodeMemoryMb = Integer.parseInt(args[++i]);
          break;
        case "--base-dir":
          o.baseDir = args[++i];
          break;
        case "--conf-dir":
          o.confDir = args[++i];
          break;
        case "--kerberos":
          o.kerberosDir = args[++i];
          break;
        case "--protection":
          o.protection = args[++i];
          break;
        case "--user":
          o.users.add(args[++i]);
          break;
        case "--kms":
          o.kmsClasspath = args[++i];
          break;
        case "--kms-key":
          o.kmsKey = args[++i];
          break;
        default:
          throw new IllegalArgumentException("unknown option " + a);
      }
    }
    if (!replicationSet) {
      o.replication = Math.min(3, o.dataNodes);
    }
    if (o.replication > o.dataNodes) {
      throw new IllegalArgumentException(
          "replication " + o.replication + " exceeds the number of DataNodes " + o.dataNodes);
    }
    if (o.baseDir == null) {
      throw new IllegalArgumentException("--base-dir is required");
    }
    if (!List.of("authentication", "integrity", "privacy").contains(o.protection)) {
      throw new IllegalArgumentException(
          "--protection must be authentication, integrity or privacy, not " + o.protection);
    }
    if (o.users.contains("hdfs")) {
      throw new IllegalArgumentException("--user hdfs: hdfs is the service principal");
    }
    if (o.kmsClasspath != null && o.kerberosDir != null) {
      throw new IllegalArgumentException("--kms runs MiniKMS with simple authentication: not with --kerberos");
    }
    if (o.confDir == null) {
      o.confDir = new File(o.baseDir, "conf").getPath();
    }
    return o;
  }
}
