package io.hdfsmodels.minidfs;

import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.net.URI;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.HexFormat;
import java.util.List;

import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.crypto.key.KeyProvider;
import org.apache.hadoop.crypto.key.KeyProviderFactory;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.hdfs.client.CreateEncryptionZoneFlag;
import org.apache.hadoop.hdfs.client.HdfsAdmin;
import org.apache.hadoop.hdfs.protocol.EncryptionZone;

/**
 * Hadoop's MiniKMS in the launcher JVM, for HDFS encryption zones (--kms, RELIABILITY P12).
 *
 * <p>MiniKMS ships in hadoop-kms's test jar and is built on unshaded hadoop-common, Jetty and
 * Jersey, while the launcher runs HDFS on the shaded minicluster (whose HttpServer2 speaks
 * relocated Jetty and servlet classes: KMS's webapp cannot load there). So it runs in a class
 * loader of its own, over the classpath the Python side resolved from kms/pom.xml, and is driven
 * by reflection; the launcher talks to it as any client does, over HTTP (kms://http@...).
 */
final class Kms {
  private static final String MINI_KMS = "org.apache.hadoop.crypto.key.kms.server.MiniKMS";

  private final URLClassLoader loader;
  private final Object miniKms;
  private final String providerUri;

  private Kms(URLClassLoader loader, Object miniKms, String providerUri) {
    this.loader = loader;
    this.miniKms = miniKms;
    this.providerUri = providerUri;
  }

  /** Start MiniKMS with its config and key store under {@code dir}. */
  static Kms start(File dir, String classpathFile) throws Exception {
    if (!dir.isDirectory() && !dir.mkdirs()) {
      throw new IOException("cannot create KMS dir " + dir);
    }
    List<URL> urls = new ArrayList<>();
    String classpath = Files.readString(new File(classpathFile).toPath(), StandardCharsets.UTF_8).trim();
    for (String entry : classpath.split(File.pathSeparator)) {
      urls.add(new File(entry).toURI().toURL());
    }
    URLClassLoader loader =
        new URLClassLoader("minikms", urls.toArray(new URL[0]), ClassLoader.getPlatformClassLoader());
    Thread self = Thread.currentThread();
    ClassLoader before = self.getContextClassLoader();
    String log4j = System.getProperty("log4j.configuration");
    self.setContextClassLoader(loader); // Jetty's webapp and its threads load KMS classes through it
    try {
      Class<?> builderClass = Class.forName(MINI_KMS + "$Builder", true, loader);
      Object builder = builderClass.getConstructor().newInstance();
      builderClass.getMethod("setKmsConfDir", File.class).invoke(builder, dir);
      Object kms = builderClass.getMethod("build").invoke(builder);
      kms.getClass().getMethod("start").invoke(kms);
      URL url = (URL) kms.getClass().getMethod("getKMSUrl").invoke(kms);
      return new Kms(loader, kms, "kms://http@127.0.0.1:" + url.getPort() + "/kms");
    } finally {
      self.setContextClassLoader(before);
      // MiniKMS points log4j at its own file; the launcher's logging keeps its setting.
      if (log4j == null) {
        System.clearProperty("log4j.configuration");
      } else {
        System.setProperty("log4j.configuration", log4j);
      }
    }
  }

  String providerUri() {
    return providerUri;
  }

  /** Point NameNodes, DataNodes and clients at this KMS (both the old and the current name). */
  void configure(Configuration conf) {
    conf.set("hadoop.security.key.provider.path", providerUri);
    conf.set("dfs.encryption.key.provider.uri", providerUri);
  }

  /** Create a key in the KMS, over its REST API. */
  void createKey(String name, Configuration conf) throws Exception {
    KeyProvider provider = KeyProviderFactory.get(URI.create(providerUri), conf);
    provider.createKey(name, KeyProvider.options(conf));
    provider.flush();
  }

  /** Create {@code path} (empty) and make it an encryption zone of {@code key}. */
  static Object createZone(FileSystem fs, String path, String key, Configuration conf) throws IOException {
    Path dir = new Path(path);
    fs.mkdirs(dir);
    HdfsAdmin admin = new HdfsAdmin(fs.getUri(), conf);
    admin.createEncryptionZone(dir, key, EnumSet.of(CreateEncryptionZoneFlag.PROVISION_TRASH));
    return Json.map("zone", path, "key", key);
  }

  /**
   * What HDFS holds for {@code path}: its zone and key, whether its status says encrypted, and the
   * sha256 of its bytes as stored (read through /.reserved/raw, which skips decryption).
   */
  static Object describe(FileSystem fs, String path, Configuration conf) throws Exception {
    HdfsAdmin admin = new HdfsAdmin(fs.getUri(), conf);
    EncryptionZone zone = admin.getEncryptionZoneForPath(new Path(path));
    FileStatus status = fs.getFileStatus(new Path(path));
    MessageDigest sha = MessageDigest.getInstance("SHA-256");
    try (InputStream in = fs.open(new Path("/.reserved/raw" + path))) {
      byte[] buf = new byte[1 << 16];
      for (int n; (n = in.read(buf)) > 0; ) {
        sha.update(buf, 0, n);
      }
    }
    return Json.map(
        "zone", zone == null ? null : zone.getPath(),
        "key", zone == null ? null : zone.getKeyName(),
        "encrypted", status.isEncrypted(),
        "length", status.getLen(),
        "raw_sha256", HexFormat.of().formatHex(sha.digest()));
  }

  void stop() {
    try {
      miniKms.getClass().getMethod("stop").invoke(miniKms);
      loader.close();
    } catch (Throwable t) {
      t.printStackTrace(System.err);
    }
  }
}
