package io.hdfsmodels.minidfs;

import java.io.File;
import java.io.IOException;
import java.net.URL;
import java.net.URLClassLoader;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.yarn.api.records.ApplicationId;
import org.apache.hadoop.yarn.api.records.ContainerId;
import org.apache.hadoop.yarn.conf.YarnConfiguration;
import org.apache.hadoop.yarn.server.MiniYARNCluster;
import org.apache.hadoop.yarn.server.nodemanager.NodeManager;
import org.apache.hadoop.yarn.server.nodemanager.containermanager.container.Container;
import org.apache.hadoop.yarn.server.resourcemanager.rmapp.RMApp;
import org.apache.hadoop.yarn.server.resourcemanager.scheduler.SchedulerNodeReport;

/**
 * A MiniYARNCluster (one ResourceManager, N NodeManagers) beside the MiniDFSCluster.
 *
 * <p>Each NodeManager stands in for a node: its own local and log dirs under the base dir, every
 * port ephemeral. Sized for a small shared machine: each NodeManager offers {@code
 * --yarn-node-memory-mb} (default 5120 MB: two 1792 MB executors plus one AM of at most 1536 MB,
 * but never three executors); memory and vcore limits are not enforced; disk health checks and
 * log aggregation are off. Clients need {@link #clientConf()} in {@code yarn-site.xml}: the
 * scheduler address as well as the RM address (without it an AM retries 0.0.0.0:8030 forever).
 */
final class Yarn {
  private final MiniYARNCluster cluster;
  private final int nodeManagers;
  private final Kerberos kerberos;

  private Yarn(MiniYARNCluster cluster, int nodeManagers, Kerberos kerberos) {
    this.cluster = cluster;
    this.nodeManagers = nodeManagers;
    this.kerberos = kerberos;
  }

  /**
   * Start YARN on {@code dfsConf} (whose fs.defaultFS already names the running DFS); with
   * {@code kerberos} (nullable) the ResourceManager and NodeManagers are secure too.
   */
  static Yarn start(Configuration dfsConf, Options opts, Kerberos kerberos) throws Exception {
    File work = new File(opts.baseDir, "yarn").getAbsoluteFile();
    // MiniYARNCluster puts its dirs under ${test.build.data} (else under the current dir).
    System.setProperty("test.build.data", work.getPath());
    YarnConfiguration conf = new YarnConfiguration(dfsConf);
    configure(conf, opts);
    if (kerberos != null) {
      kerberos.configureYarn(conf);
    }
    seeConfDir(opts);
    MiniYARNCluster cluster = new MiniYARNCluster("hdfs-models", 1, opts.yarnNodeManagers, 1, 1);
    cluster.init(conf);
    cluster.start();
    if (!cluster.waitForNodeManagersToConnect(60_000)) {
      cluster.stop();
      throw new IllegalStateException(
          opts.yarnNodeManagers + " NodeManagers did not register with the ResourceManager in 60s");
    }
    return new Yarn(cluster, opts.yarnNodeManagers, kerberos);
  }

  /**
   * Puts the conf dir on the classpath of every thread started from here on, as a real
   * NodeManager has HADOOP_CONF_DIR on its classpath. The container localizer reads HDFS with a
   * fresh {@code new YarnConfiguration()}, built from classpath resources only: without the
   * client's security keys ({@code dfs.data.transfer.protection} above all) its block reads from
   * a SASL-protected DataNode fail ("Could not obtain block … No live nodes contain current
   * block"). The launcher writes the files once the clusters are up, before any application.
   */
  private static void seeConfDir(Options opts) throws IOException {
    File dir = new File(opts.confDir).getAbsoluteFile();
    if (!dir.isDirectory() && !dir.mkdirs()) {
      throw new IOException("cannot create conf dir " + dir);
    }
    URL url = dir.toURI().toURL(); // a trailing slash, since the directory exists: a dir, not a jar
    Thread current = Thread.currentThread();
    current.setContextClassLoader(new URLClassLoader(new URL[] {url}, current.getContextClassLoader()));
  }

  private static void configure(YarnConfiguration conf, Options opts) {
    conf.setBoolean(YarnConfiguration.YARN_MINICLUSTER_FIXED_PORTS, false);
    // MiniYARNCluster gives each NodeManager this key's value (default 4096), not NM_PMEM_MB.
    conf.setInt(YarnConfiguration.YARN_MINICLUSTER_NM_PMEM_MB, opts.yarnNodeMemoryMb);
    conf.setInt(YarnConfiguration.NM_PMEM_MB, opts.yarnNodeMemoryMb);
    conf.setInt(YarnConfiguration.NM_VCORES, 8);
    conf.setInt(YarnConfiguration.RM_SCHEDULER_MINIMUM_ALLOCATION_MB, 128);
    conf.setInt(YarnConfiguration.RM_SCHEDULER_MAXIMUM_ALLOCATION_MB, opts.yarnNodeMemoryMb);
    conf.setBoolean(YarnConfiguration.NM_PMEM_CHECK_ENABLED, false);
    conf.setBoolean(YarnConfiguration.NM_VMEM_CHECK_ENABLED, false);
    conf.setBoolean("yarn.nodemanager.disk-health-checker.enable", false);
    conf.setFloat(YarnConfiguration.NM_MAX_PER_DISK_UTILIZATION_PERCENTAGE, 99.9f);
    conf.setLong(YarnConfiguration.NM_MIN_PER_DISK_FREE_SPACE_MB, 0);
    conf.setBoolean(YarnConfiguration.LOG_AGGREGATION_ENABLED, false);
    // Quick container kills and NM stops (defaults make a stop take ~36 s).
    conf.setLong(YarnConfiguration.NM_PROCESS_KILL_WAIT_MS, 500);
    conf.setLong(YarnConfiguration.NM_SLEEP_DELAY_BEFORE_SIGKILL_MS, 250);
    conf.setInt(YarnConfiguration.RM_AM_MAX_ATTEMPTS, 2);
    // FIFO: one queue, nothing to configure (no capacity-scheduler.xml on the classpath).
    conf.set(YarnConfiguration.RM_SCHEDULER,
        "org.apache.hadoop.yarn.server.resourcemanager.scheduler.fifo.FifoScheduler");
  }

  /** What a client (spark-submit, an AM) needs in yarn-site.xml: the RM's real addresses. */
  Configuration clientConf() {
    Configuration started = cluster.getConfig();
    Configuration c = new Configuration(false);
    String[] keys = {
      YarnConfiguration.RM_ADDRESS,
      YarnConfiguration.RM_SCHEDULER_ADDRESS,
      YarnConfiguration.RM_RESOURCE_TRACKER_ADDRESS,
      YarnConfiguration.RM_ADMIN_ADDRESS,
      YarnConfiguration.RM_WEBAPP_ADDRESS,
    };
    for (String key : keys) {
      c.set(key, started.get(key));
    }
    c.set("yarn.resourcemanager.hostname", started.getSocketAddr(
        YarnConfiguration.RM_ADDRESS, YarnConfiguration.DEFAULT_RM_ADDRESS,
        YarnConfiguration.DEFAULT_RM_PORT).getHostString());
    c.setInt(YarnConfiguration.RM_SCHEDULER_MINIMUM_ALLOCATION_MB, 128);
    c.setInt(YarnConfiguration.RM_SCHEDULER_MAXIMUM_ALLOCATION_MB,
        started.getInt(YarnConfiguration.RM_SCHEDULER_MAXIMUM_ALLOCATION_MB, 8192));
    if (kerberos != null) {
      kerberos.configureYarnClient(c);
    }
    return c;
  }

  /** The ready line's "yarn" object: RM addresses and each NodeManager's dirs. */
  Object info() {
    Configuration started = cluster.getConfig();
    return Json.map(
        "rm", started.get(YarnConfiguration.RM_ADDRESS),
        "scheduler", started.get(YarnConfiguration.RM_SCHEDULER_ADDRESS),
        "webapp", started.get(YarnConfiguration.RM_WEBAPP_ADDRESS),
        "min_allocation_mb",
        cluster.getResourceManager().getResourceScheduler().getMinimumResourceCapability().getMemorySize(),
        "nodemanagers", nodes(false));
  }

  /** Each NodeManager: node id, local and log dirs, and (when asked) its live containers. */
  List<Object> nodes(boolean withContainers) {
    List<Object> out = new ArrayList<>();
    for (int i = 0; i < nodeManagers; i++) {
      NodeManager nm = cluster.getNodeManager(i);
      Configuration c = nm.getConfig();
      Map<String, Object> node = Json.map(
          "index", i,
          "node_id", String.valueOf(nm.getNMContext().getNodeId()),
          "local_dirs", Arrays.asList(c.getTrimmedStrings(YarnConfiguration.NM_LOCAL_DIRS)),
          "log_dirs", Arrays.asList(c.getTrimmedStrings(YarnConfiguration.NM_LOG_DIRS)));
      SchedulerNodeReport report = cluster.getResourceManager().getResourceScheduler()
          .getNodeReport(nm.getNMContext().getNodeId());
      if (report != null) {
        node.put("used_mb", report.getUsedResource().getMemorySize());
        node.put("available_mb", report.getAvailableResource().getMemorySize());
      }
      if (withContainers) {
        List<Object> containers = new ArrayList<>();
        for (Map.Entry<ContainerId, Container> e : nm.getNMContext().getContainers().entrySet()) {
          containers.add(Json.map(
              "id", String.valueOf(e.getKey()),
              "state", String.valueOf(e.getValue().getContainerState()),
              "memory_mb", e.getValue().getResource().getMemorySize(),
              "user", e.getValue().getUser()));
        }
        node.put("containers", containers);
      }
      out.add(node);
    }
    return out;
  }

  /** Every application the ResourceManager knows: id, name, user, state, final status. */
  List<Object> apps() {
    List<Object> out = new ArrayList<>();
    Map<ApplicationId, RMApp> apps = cluster.getResourceManager().getRMContext().getRMApps();
    for (RMApp app : apps.values()) {
      out.add(Json.map(
          "id", String.valueOf(app.getApplicationId()),
          "name", app.getName(),
          "user", app.getUser(),
          "state", String.valueOf(app.getState()),
          "final_status", String.valueOf(app.getFinalApplicationStatus()),
          "diagnostics", String.valueOf(app.getDiagnostics())));
    }
    return out;
  }

  /** Stop the NodeManagers in parallel (each waits seconds in its log handler), then the rest. */
  void stop() {
    List<Thread> threads = new ArrayList<>();
    for (int i = 0; i < nodeManagers; i++) {
      NodeManager nm = cluster.getNodeManager(i);
      Thread t = new Thread(nm::stop, "stop-nm-" + i);
      t.start();
      threads.add(t);
    }
    for (Thread t : threads) {
      try {
        t.join(60_000);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }
    cluster.stop();
  }
}
