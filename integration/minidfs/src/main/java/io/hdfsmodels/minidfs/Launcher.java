package io.hdfsmodels.minidfs;

import java.io.BufferedReader;
import java.io.File;
import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.io.PrintStream;
import java.lang.reflect.Field;
import java.net.InetSocketAddress;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.fs.permission.FsPermission;
import org.apache.hadoop.hdfs.DFSTestUtil;
import org.apache.hadoop.hdfs.DistributedFileSystem;
import org.apache.hadoop.hdfs.MiniDFSCluster;
import org.apache.hadoop.hdfs.MiniDFSNNTopology;
import org.apache.hadoop.hdfs.protocol.DatanodeID;
import org.apache.hadoop.hdfs.protocol.DatanodeInfo;
import org.apache.hadoop.hdfs.protocol.LocatedBlock;
import org.apache.hadoop.hdfs.server.blockmanagement.BlockManagerTestUtil;
import org.apache.hadoop.hdfs.server.blockmanagement.DatanodeDescriptor;
import org.apache.hadoop.hdfs.server.datanode.DataNode;
import org.apache.hadoop.hdfs.server.datanode.metrics.DataNodeMetrics;
import org.apache.hadoop.hdfs.server.namenode.FSNamesystem;
import org.apache.hadoop.hdfs.server.namenode.NameNode;
import org.apache.hadoop.hdfs.server.namenode.NameNodeAdapter;
import org.apache.hadoop.metrics2.lib.MutableCounterLong;

/**
 * Runs a MiniDFSCluster for tests and speaks a line protocol.
 *
 * <p>stdout carries only protocol lines: one JSON "ready" line once the cluster is up, then one
 * JSON answer per command read from stdin. Everything else (Hadoop's logs, stray prints) goes to
 * stderr. The JVM exits on "quit" or when stdin reaches EOF, so it never outlives its parent.
 *
 * <p>Commands: datanodes | stop-datanode ADDR | restart-datanode ADDR | block-locations PATH |
 * corrupt-replica PATH [BLOCK [ADDR]] | corrupt-all PATH [BLOCK] | bytes-read | failover |
 * outage SECONDS | ha-state | token USER PATH [SERVICE] (--kerberos only) | ping | quit.
 * corrupt-replica with ADDR corrupts the replica on that DataNode (so a test can corrupt every
 * replica but a chosen one); without it, the first replica the NameNode lists.
 * With {@code --yarn-nodemanagers N} also yarn-apps | yarn-nodes (see {@link Yarn}).
 * With {@code --kms CLASSPATH_FILE} (MiniKMS, see {@link Kms}) also create-zone PATH KEY |
 * encryption PATH.
 */
public final class Launcher {
  private static final String NAMESERVICE = "minidfs-ns";

  private final Options opts;
  private final PrintStream proto;
  private MiniDFSCluster cluster;
  private Configuration clientConf;
  private Yarn yarn;
  private volatile int activeNameNode = 0;
  private volatile Thread outage;
  private Kerberos kerberos;
  private Kms kms;
  private final Map<String, MiniDFSCluster.DataNodeProperties> stopped = new HashMap<>();

  private Launcher(Options opts, PrintStream proto) {
    this.opts = opts;
    this.proto = proto;
  }

  public static void main(String[] args) throws Exception {
    // Keep the protocol channel clean: whatever prints to System.out goes to stderr.
    PrintStream proto =
        new PrintStream(new FileOutputStream(FileDescriptor.out), true, StandardCharsets.UTF_8);
    System.setOut(System.err);
    Options opts = Options.parse(args);
    Launcher launcher = new Launcher(opts, proto);
    // On SIGTERM too: stopping YARN kills its containers, which would otherwise outlive us.
    Runtime.getRuntime().addShutdownHook(new Thread(launcher::shutdown, "launcher-shutdown"));
    int rc = 0;
    try {
      launcher.start();
      launcher.serve();
    } catch (Throwable t) {
      t.printStackTrace(System.err);
      proto.println(Json.obj("ready", false, "error", String.valueOf(t)));
      rc = 1;
    } finally {
      launcher.shutdown();
    }
    System.exit(rc);
  }

  private void start() throws Exception {
    if (opts.kerberosDir != null) {
      // First: Hadoop's security classes read the default realm once, from the KDC's krb5.conf.
      kerberos = Kerberos.start(new File(opts.kerberosDir), opts.protection, opts.users);
    }
    Configuration conf = new Configuration();
    conf.setLong("dfs.blocksize", opts.blockSize);
    conf.setLong("dfs.namenode.fs-limits.min-block-size", Math.min(opts.blockSize, 1024));
    conf.setInt("dfs.replication", opts.replication);
    conf.setBoolean("dfs.permissions.enabled", opts.permissions);
    conf.setBoolean("dfs.webhdfs.enabled", true);
    // Clients on loopback; DataNodes advertise 127.0.0.1 so redirects stay local.
    conf.set("dfs.datanode.hostname", "127.0.0.1");
    conf.setBoolean("dfs.client.use.datanode.hostname", false);
    // Fast heartbeats so a stopped DataNode is noticed quickly in fault tests.
    conf.setInt("dfs.heartbeat.interval", 1);
    conf.setInt("dfs.namenode.heartbeat.recheck-interval", 2000);
    // Do not let the block scanner repair replicas behind a test's back.
    conf.setInt("dfs.datanode.scan.period.hours", -1);
    conf.setInt("dfs.namenode.replication.max-streams", 0);
    if (kerberos != null) {
      kerberos.configureServer(conf);
    }
    if (opts.kmsClasspath != null) {
      // Before the cluster: NameNodes and DataNodes read the key provider when they start.
      kms = Kms.start(new File(new File(opts.baseDir).getAbsoluteFile().getParentFile(), "kms"), opts.kmsClasspath);
      kms.configure(conf);
    }

    // The Builder sets hdfs.minidfs.basedir itself; Hadoop 3.3 refuses a conf that already has it.
    MiniDFSCluster.Builder builder =
        new MiniDFSCluster.Builder(conf, new File(opts.baseDir))
            .numDataNodes(opts.dataNodes)
            .format(true)
            .checkDataNodeAddrConfig(false);
    if (opts.ha) {
      builder.nnTopology(MiniDFSNNTopology.simpleHATopology());
    }
    cluster = builder.build();
    if (opts.ha) {
      cluster.transitionToActive(0);
    }
    cluster.waitActive();
    clientConf = buildClientConf(conf);
    if (kms != null) {
      kms.configure(clientConf);
      kms.createKey(opts.kmsKey, clientConf);
    }
    prepareDirectories();
    if (opts.yarnNodeManagers > 0) {
      Configuration yarnConf = new Configuration(conf);
      for (Map.Entry<String, String> e : clientConf) {
        yarnConf.set(e.getKey(), e.getValue());
      }
      yarn = Yarn.start(yarnConf, opts, kerberos);
    }
    writeConfDir();
    proto.println(readyLine());
  }

  private Configuration buildClientConf(Configuration serverConf) {
    Configuration c = new Configuration(false);
    c.setLong("dfs.blocksize", opts.blockSize);
    c.setInt("dfs.replication", opts.replication);
    c.setBoolean("dfs.client.use.datanode.hostname", false);
    if (opts.ha) {
      c.set("fs.defaultFS", "hdfs://" + NAMESERVICE);
      c.set("dfs.nameservices", NAMESERVICE);
      c.set("dfs.ha.namenodes." + NAMESERVICE, "nn1,nn2");
      for (int i = 0; i < 2; i++) {
        String id = "nn" + (i + 1);
        c.set("dfs.namenode.rpc-address." + NAMESERVICE + "." + id, addr(cluster.getNameNode(i).getNameNodeAddress()));
        c.set("dfs.namenode.http-address." + NAMESERVICE + "." + id, addr(cluster.getNameNode(i).getHttpAddress()));
      }
      c.set(
          "dfs.client.failover.proxy.provider." + NAMESERVICE,
          "org.apache.hadoop.hdfs.server.namenode.ha.ConfiguredFailoverProxyProvider");
    } else {
      c.set("fs.defaultFS", "hdfs://" + addr(cluster.getNameNode(0).getNameNodeAddress()));
      c.set("dfs.namenode.http-address", addr(cluster.getNameNode(0).getHttpAddress()));
    }
    if (kerberos != null) {
      kerberos.configureClient(c);
    }
    return c;
  }

  /** /tmp and /user are world-writable (sticky) so tests can act as other users. */
  private void prepareDirectories() throws IOException {
    FileSystem fs = fileSystem();
    for (String dir : new String[] {"/tmp", "/user"}) {
      Path p = new Path(dir);
      fs.mkdirs(p);
      fs.setPermission(p, new FsPermission((short) 01777));
    }
    if (kerberos != null) {
      kerberos.createHomes(fs);
    }
  }

  private FileSystem fileSystem() throws IOException {
    return FileSystem.newInstance(URI.create(clientConf.get("fs.defaultFS")), clientConf);
  }

  private void writeConfDir() throws IOException {
    File dir = new File(opts.confDir);
    if (!dir.isDirectory() && !dir.mkdirs()) {
      throw new IOException("cannot create conf dir " + dir);
    }
    Configuration core = new Configuration(false);
    core.set("fs.defaultFS", clientConf.get("fs.defaultFS"));
    if (kerberos != null) {
      kerberos.configureClient(core);
    }
    if (kms != null) {
      kms.configure(core); // hdfs-native reads hadoop.security.key.provider.path from core-site.xml
    }
    writeXml(core, new File(dir, "core-site.xml"));
    writeXml(clientConf, new File(dir, "hdfs-site.xml"));
    if (yarn != null) {
      writeXml(yarn.clientConf(), new File(dir, "yarn-site.xml"));
    }
  }

  private static void writeXml(Configuration c, File target) throws IOException {
    File tmp = new File(target.getPath() + ".tmp");
    try (OutputStream out = new FileOutputStream(tmp)) {
      c.writeXml(out);
    }
    if (!tmp.renameTo(target)) {
      throw new IOException("cannot rename " + tmp + " to " + target);
    }
  }

  private String readyLine() {
    List<Object> nns = new ArrayList<>();
    List<Object> webs = new ArrayList<>();
    int count = opts.ha ? 2 : 1;
    for (int i = 0; i < count; i++) {
      nns.add("hdfs://" + addr(cluster.getNameNode(i).getNameNodeAddress()));
      webs.add(addr(cluster.getNameNode(i).getHttpAddress()));
    }
    return Json.obj(
        "ready", true,
        "hadoop_version", org.apache.hadoop.util.VersionInfo.getVersion(),
        "url", clientConf.get("fs.defaultFS"),
        "namenodes", nns,
        "webhdfs", webs,
        "nameservice", opts.ha ? NAMESERVICE : null,
        "datanodes", dataNodeList(),
        "conf_dir", new File(opts.confDir).getAbsolutePath(),
        "block_size", opts.blockSize,
        "replication", opts.replication,
        "user", System.getProperty("user.name"),
        "kerberos", kerberos == null ? null : kerberos.describe(),
        "yarn", yarn == null ? null : yarn.info(),
        "kms", kms == null ? null : Json.map("uri", kms.providerUri(), "key", opts.kmsKey));
  }

  private void serve() throws IOException {
    BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
    String line;
    while ((line = in.readLine()) != null) {
      line = line.trim();
      if (line.isEmpty()) {
        continue;
      }
      String[] parts = line.split("\\s+");
      if (parts[0].equals("quit")) {
        proto.println(Json.obj("ok", true, "bye", true));
        return;
      }
      String answer;
      try {
        answer = Json.obj("ok", true, "result", handle(parts));
      } catch (Throwable t) {
        t.printStackTrace(System.err);
        answer = Json.obj("ok", false, "error", t.getClass().getName() + ": " + t.getMessage());
      }
      proto.println(answer);
    }
  }

  private Object handle(String[] parts) throws Exception {
    switch (parts[0]) {
      case "ping":
        return "pong";
      case "datanodes":
        return dataNodeList();
      case "stop-datanode":
        return stopDataNode(arg(parts, 1));
      case "restart-datanode":
        return restartDataNode(arg(parts, 1));
      case "block-locations":
        return blockLocations(arg(parts, 1));
      case "corrupt-replica":
        return corrupt(arg(parts, 1), parts.length > 2 ? Integer.parseInt(parts[2]) : 0, false,
            parts.length > 3 ? parts[3] : null);
      case "corrupt-all":
        return corrupt(arg(parts, 1), parts.length > 2 ? Integer.parseInt(parts[2]) : 0, true, null);
      case "bytes-read":
        return bytesRead();
      case "failover":
        return failover();
      case "outage":
        return outage(Double.parseDouble(arg(parts, 1)));
      case "ha-state":
        return haState();
      case "token":
        return token(parts);
      case "yarn-apps":
        return yarnOrFail().apps();
      case "yarn-nodes":
        return yarnOrFail().nodes(true);
      case "create-zone":
        try (FileSystem fs = fileSystem()) {
          return Kms.createZone(fs, arg(parts, 1), arg(parts, 2), clientConf);
        }
      case "encryption":
        try (FileSystem fs = fileSystem()) {
          return Kms.describe(fs, arg(parts, 1), clientConf);
        }
      default:
        throw new IllegalArgumentException("unknown command " + parts[0]);
    }
  }

  private static String arg(String[] parts, int i) {
    if (parts.length <= i) {
      throw new IllegalArgumentException(parts[0] + ": missing argument " + i);
    }
    return parts[i];
  }

  private List<Object> dataNodeList() {
    List<Object> out = new ArrayList<>();
    List<DataNode> dns = cluster.getDataNodes();
    for (int i = 0; i < dns.size(); i++) {
      DataNode dn = dns.get(i);
      out.add(Json.map("index", i, "xfer", dn.getDatanodeId().getXferAddr(), "alive", true,
          "http", "127.0.0.1:" + dn.getInfoPort()));
    }
    for (String addr : stopped.keySet()) {
      out.add(Json.map("index", -1, "xfer", addr, "alive", false));
    }
    return out;
  }

  private Object stopDataNode(String xfer) throws IOException {
    DatanodeID id = null;
    for (DataNode dn : cluster.getDataNodes()) {
      if (dn.getDatanodeId().getXferAddr().equals(xfer)) {
        id = dn.getDatanodeId();
      }
    }
    MiniDFSCluster.DataNodeProperties props = cluster.stopDataNode(xfer);
    if (props == null) {
      throw new IllegalArgumentException("no running DataNode at " + xfer);
    }
    stopped.put(xfer, props);
    markDead(id);
    return xfer;
  }

  /**
   * Tell every running NameNode the stopped DataNode is dead, as it concludes by itself once
   * heartbeats expire (10.5 min by default). Until then a NameNode keeps handing the node out,
   * and WebHDFS, which reads from the one DataNode the NameNode redirects it to, would fail.
   */
  private void markDead(DatanodeID id) throws IOException {
    for (int i = 0; i < cluster.getNumNameNodes(); i++) {
      FSNamesystem ns = cluster.getNamesystem(i);
      if (ns == null) {
        continue; // a NameNode stopped by a failover test
      }
      DatanodeDescriptor node = NameNodeAdapter.getDatanode(ns, id);
      if (node != null) {
        DFSTestUtil.setDatanodeDead(node);
        BlockManagerTestUtil.checkHeartbeat(ns.getBlockManager());
      }
    }
  }

  private Object restartDataNode(String xfer) throws IOException {
    MiniDFSCluster.DataNodeProperties props = stopped.remove(xfer);
    if (props == null) {
      throw new IllegalArgumentException("no stopped DataNode at " + xfer);
    }
    if (!cluster.restartDataNode(props, true)) {
      throw new IOException("DataNode " + xfer + " did not restart");
    }
    cluster.waitActive();
    return xfer;
  }

  private List<LocatedBlock> locate(String path) throws IOException {
    try (FileSystem fs = fileSystem()) {
      DistributedFileSystem dfs = (DistributedFileSystem) fs;
      long len = dfs.getFileStatus(new Path(path)).getLen();
      return dfs.getClient().getLocatedBlocks(path, 0, Math.max(len, 1)).getLocatedBlocks();
    }
  }

  private Object blockLocations(String path) throws IOException {
    List<Object> out = new ArrayList<>();
    for (LocatedBlock lb : locate(path)) {
      List<Object> where = new ArrayList<>();
      for (DatanodeInfo info : lb.getLocations()) {
        where.add(info.getXferAddr());
      }
      out.add(Json.map("block", lb.getBlock().getBlockName(), "offset", lb.getStartOffset(),
          "length", lb.getBlockSize(), "locations", where));
    }
    return out;
  }

  private Object corrupt(String path, int blockIndex, boolean all, String onlyAt) throws IOException {
    List<LocatedBlock> blocks = locate(path);
    if (blockIndex < 0 || blockIndex >= blocks.size()) {
      throw new IllegalArgumentException(path + " has " + blocks.size() + " blocks, no block " + blockIndex);
    }
    LocatedBlock lb = blocks.get(blockIndex);
    List<Object> corrupted = new ArrayList<>();
    for (DatanodeInfo info : lb.getLocations()) {
      if (onlyAt != null && !onlyAt.equals(info.getXferAddr())) {
        continue;
      }
      int idx = dataNodeIndex(info.getXferAddr());
      cluster.corruptReplica(idx, lb.getBlock());
      corrupted.add(info.getXferAddr());
      if (!all) {
        break;
      }
    }
    if (corrupted.isEmpty()) {
      throw new IllegalArgumentException(
          "block " + blockIndex + " of " + path + " has no replica on DataNode " + onlyAt);
    }
    return Json.map("block", lb.getBlock().getBlockName(), "corrupted", corrupted);
  }

  private int dataNodeIndex(String xfer) {
    List<DataNode> dns = cluster.getDataNodes();
    for (int i = 0; i < dns.size(); i++) {
      if (dns.get(i).getDatanodeId().getXferAddr().equals(xfer)) {
        return i;
      }
    }
    throw new IllegalArgumentException("no running DataNode at " + xfer);
  }

  /** Sum of every running DataNode's BytesRead counter (read directly, no JMX cache delay). */
  private Object bytesRead() throws Exception {
    Field field = DataNodeMetrics.class.getDeclaredField("bytesRead");
    field.setAccessible(true);
    long total = 0;
    Map<String, Object> per = new LinkedHashMap<>();
    for (DataNode dn : cluster.getDataNodes()) {
      long v = ((MutableCounterLong) field.get(dn.getMetrics())).value();
      per.put(dn.getDatanodeId().getXferAddr(), v);
      total += v;
    }
    return Json.map("total", total, "per_datanode", per);
  }

  private Yarn yarnOrFail() {
    if (yarn == null) {
      throw new IllegalStateException("no YARN here (start with --yarn-nodemanagers N)");
    }
    return yarn;
  }

  private Object failover() throws IOException {
    requireCalm("failover");
    int from = activeNameNode;
    int to = 1 - from;
    cluster.shutdownNameNode(from);
    cluster.transitionToActive(to);
    activeNameNode = to;
    return Json.map("killed", "nn" + (from + 1), "active", "nn" + (to + 1),
        "active_rpc", "hdfs://" + addr(cluster.getNameNode(to).getNameNodeAddress()));
  }

  private void requireCalm(String command) {
    if (!opts.ha) {
      throw new IllegalStateException(command + " needs HA mode (--ha)");
    }
    Thread running = outage;
    if (running != null && running.isAlive()) {
      throw new IllegalStateException(command + ": an outage is still in progress (see ha-state)");
    }
  }

  /**
   * A failover that takes as long as a real one (ZKFC notices, fences, promotes: about 30 s). The
   * active NameNode stops now and the answer comes at once; a background thread makes the other
   * one active after {@code seconds}, then restarts the stopped one as the standby, so a later
   * outage or failover has one to promote. Until then clients meet a refused connection on one
   * NameNode and StandbyException on the other (RELIABILITY P3). ha-state tells when it is over.
   */
  private Object outage(double seconds) throws IOException {
    requireCalm("outage");
    int from = activeNameNode;
    int to = 1 - from;
    cluster.shutdownNameNode(from);
    Thread t = new Thread(() -> endOutage(from, to, (long) (seconds * 1000)), "outage-nn" + (to + 1));
    t.setDaemon(true);
    outage = t;
    t.start();
    return Json.map("killed", "nn" + (from + 1), "active_after_s", seconds, "next_active", "nn" + (to + 1));
  }

  private void endOutage(int from, int to, long millis) {
    try {
      Thread.sleep(millis);
      cluster.transitionToActive(to);
      activeNameNode = to;
      System.err.println("outage: nn" + (to + 1) + " is active after " + millis + " ms");
      cluster.restartNameNode(from, false);
      System.err.println("outage: nn" + (from + 1) + " restarted as the standby");
    } catch (Throwable t) {
      t.printStackTrace(System.err); // ha-state shows what did not happen
    }
  }

  /** Each NameNode's state (active, standby or down) and whether an outage is in progress. */
  private Object haState() {
    List<Object> nns = new ArrayList<>();
    for (int i = 0; i < cluster.getNumNameNodes(); i++) {
      NameNode nn = cluster.getNameNode(i);
      String state = nn == null ? "down" : nn.isActiveState() ? "active" : "standby";
      nns.add(Json.map("name", "nn" + (i + 1), "state", state));
    }
    Thread running = outage;
    return Json.map("namenodes", nns, "outage", running != null && running.isAlive());
  }

  private Object token(String[] parts) throws Exception {
    if (kerberos == null) {
      throw new IllegalStateException("token needs a secure cluster (--kerberos)");
    }
    return kerberos.writeToken(arg(parts, 1), arg(parts, 2), clientConf, parts.length > 3 ? parts[3] : null);
  }

  /** Idempotent: runs from main's finally and again from the shutdown hook. */
  private synchronized void shutdown() {
    if (yarn != null) {
      try {
        yarn.stop();
      } catch (Throwable t) {
        t.printStackTrace(System.err);
      }
      yarn = null;
    }
    if (cluster != null) {
      try {
        cluster.shutdown(true);
      } catch (Throwable t) {
        t.printStackTrace(System.err);
      }
      cluster = null;
    }
    if (kms != null) {
      kms.stop();
      kms = null;
    }
    if (kerberos != null) {
      kerberos.stop();
      kerberos = null;
    }
  }

  private static String addr(InetSocketAddress a) {
    return "127.0.0.1:" + a.getPort();
  }
}
