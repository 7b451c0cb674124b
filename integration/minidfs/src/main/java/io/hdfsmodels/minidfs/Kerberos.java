package io.hdfsmodels.minidfs;

import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.net.URI;
import java.security.PrivilegedExceptionAction;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;

import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.fs.permission.FsPermission;
import org.apache.hadoop.io.Text;
import org.apache.hadoop.minikdc.MiniKdc;
import org.apache.hadoop.security.Credentials;
import org.apache.hadoop.security.UserGroupInformation;
import org.apache.hadoop.security.token.Token;

/**
 * A KDC in the launcher JVM and the settings that make the MiniDFSCluster secure (--kerberos).
 *
 * <p>MiniKdc (Apache Kerby) issues tickets for the service principals {@code hdfs/localhost}
 * (NameNodes and DataNodes) and {@code HTTP/localhost} (SPNEGO for WebHDFS), which share one
 * keytab, and for each user principal, each with its own keytab. RPC and data transfer use SASL
 * with the requested quality of protection; block access tokens are on; privileged ports are not
 * needed ({@code ignore.secure.ports.for.testing}), so neither are HTTPS keystores.
 *
 * <p>It must start before anything else touches Hadoop's security classes: the default realm is
 * read from the krb5.conf that {@link MiniKdc#start()} points {@code java.security.krb5.conf} at.
 */
final class Kerberos {
  static final String SERVICE_HOST = "localhost";

  private final MiniKdc kdc;
  private final File dir;
  private final String protection;
  private final List<String> users;
  private final File serviceKeytab;

  private Kerberos(MiniKdc kdc, File dir, String protection, List<String> users) {
    this.kdc = kdc;
    this.dir = dir;
    this.protection = protection;
    this.users = users;
    this.serviceKeytab = new File(dir, "service.keytab");
  }

  /** Starts the KDC in {@code dir} and creates the service principals and one keytab per user. */
  static Kerberos start(File dir, String protection, List<String> users) throws Exception {
    if (!dir.isDirectory() && !dir.mkdirs()) {
      throw new IOException("cannot create Kerberos dir " + dir);
    }
    Properties kdcConf = MiniKdc.createConf();
    MiniKdc kdc = new MiniKdc(kdcConf, new File(dir, "kdc"));
    kdc.start();
    Kerberos k = new Kerberos(kdc, dir, protection, users);
    kdc.createPrincipal(k.serviceKeytab, "hdfs/" + SERVICE_HOST, "HTTP/" + SERVICE_HOST);
    for (String user : users) {
      kdc.createPrincipal(k.keytab(user), user);
    }
    k.writeClientKrb5Conf();
    return k;
  }

  /**
   * A krb5.conf for MIT clients (kinit, hdfs-native, requests-kerberos). MiniKdc's own leaves DNS
   * lookups on: MIT then asks DNS for the realm's KDCs on every service ticket, which costs seconds
   * per request on a machine whose resolver cannot answer.
   */
  private void writeClientKrb5Conf() throws IOException {
    String realm = kdc.getRealm();
    String text = String.join("\n",
        "[libdefaults]",
        "    default_realm = " + realm,
        "    udp_preference_limit = 1",
        "    dns_lookup_kdc = false",
        "    dns_lookup_realm = false",
        "    dns_uri_lookup = false",
        "[realms]",
        "    " + realm + " = {",
        "        kdc = " + kdc.getHost() + ":" + kdc.getPort(),
        "    }",
        "[domain_realm]",
        "    localhost = " + realm,
        "");
    Files.write(clientKrb5Conf().toPath(), text.getBytes(StandardCharsets.UTF_8));
  }

  File clientKrb5Conf() {
    return new File(dir, "krb5.conf");
  }

  String realm() {
    return kdc.getRealm();
  }

  String principal(String user) {
    return user + "@" + kdc.getRealm();
  }

  File keytab(String user) {
    return new File(dir, user + ".keytab");
  }

  private String service(String name) {
    return name + "/" + SERVICE_HOST + "@" + kdc.getRealm();
  }

  /** Server-side keys; then logs this JVM in as hdfs/localhost (the HDFS superuser). */
  void configureServer(Configuration conf) throws IOException {
    String keytab = serviceKeytab.getAbsolutePath();
    conf.set("hadoop.security.authentication", "kerberos");
    conf.setBoolean("hadoop.security.authorization", true);
    conf.set("hadoop.rpc.protection", protection);
    conf.set("dfs.data.transfer.protection", protection);
    conf.setBoolean("dfs.block.access.token.enable", true);
    conf.set("dfs.namenode.kerberos.principal", service("hdfs"));
    conf.set("dfs.namenode.keytab.file", keytab);
    conf.set("dfs.datanode.kerberos.principal", service("hdfs"));
    conf.set("dfs.datanode.keytab.file", keytab);
    conf.set("dfs.web.authentication.kerberos.principal", service("HTTP"));
    conf.set("dfs.web.authentication.kerberos.keytab", keytab);
    // Without these the NameNode's HTTP server answers every WebHDFS call 403, no challenge.
    conf.set("hadoop.http.authentication.type", "kerberos");
    conf.set("hadoop.http.authentication.kerberos.principal", service("HTTP"));
    conf.set("hadoop.http.authentication.kerberos.keytab", keytab);
    conf.setBoolean("hadoop.http.authentication.simple.anonymous.allowed", false);
    // Unprivileged DataNode ports with SASL instead of jsvc; HTTP, so no keystores.
    conf.setBoolean("ignore.secure.ports.for.testing", true);
    UserGroupInformation.setConfiguration(conf);
    UserGroupInformation.loginUserFromKeytab(service("hdfs"), keytab);
  }

  /** Secure YARN (Yarn.java): the ResourceManager and NodeManagers log in as hdfs/localhost. */
  void configureYarn(Configuration conf) {
    String keytab = serviceKeytab.getAbsolutePath();
    for (String daemon : new String[] {"resourcemanager", "nodemanager"}) {
      conf.set("yarn." + daemon + ".principal", service("hdfs"));
      conf.set("yarn." + daemon + ".keytab", keytab);
      conf.set("yarn." + daemon + ".webapp.spnego-principal", service("HTTP"));
      conf.set("yarn." + daemon + ".webapp.spnego-keytab-file", keytab);
    }
  }

  /** What a YARN client needs to talk to the secure ResourceManager. */
  void configureYarnClient(Configuration c) {
    c.set("yarn.resourcemanager.principal", service("hdfs"));
  }

  /** Keys a client needs (core-site.xml and hdfs-site.xml both get them). */
  void configureClient(Configuration c) {
    c.set("hadoop.security.authentication", "kerberos");
    c.set("hadoop.rpc.protection", protection);
    c.set("dfs.data.transfer.protection", protection);
    c.set("dfs.namenode.kerberos.principal", service("hdfs"));
    c.set("dfs.datanode.kerberos.principal", service("hdfs"));
    c.set("dfs.web.authentication.kerberos.principal", service("HTTP"));
  }

  /** {@code /user/NAME} owned by each user (mode 0755), made by the superuser {@code fs}. */
  void createHomes(FileSystem fs) throws IOException {
    for (String user : users) {
      Path home = new Path("/user/" + user);
      fs.mkdirs(home);
      fs.setPermission(home, new FsPermission((short) 0755));
      fs.setOwner(home, user, null);
    }
  }

  /**
   * Writes {@code user}'s HDFS delegation tokens to {@code path} in Hadoop's token storage format,
   * as YARN gives them to containers. The service name is Hadoop's own ({@code ip:port}, or
   * {@code ha-hdfs:NAMESERVICE}) unless {@code serviceOverride} names another.
   */
  Object writeToken(String user, String path, Configuration clientConf, String serviceOverride)
      throws Exception {
    if (!users.contains(user)) {
      throw new IllegalArgumentException("no principal for user " + user + "; users: " + users);
    }
    UserGroupInformation ugi = UserGroupInformation.loginUserFromKeytabAndReturnUGI(
        principal(user), keytab(user).getAbsolutePath());
    Credentials fetched = ugi.doAs((PrivilegedExceptionAction<Credentials>) () -> {
      try (FileSystem fs = FileSystem.newInstance(URI.create(clientConf.get("fs.defaultFS")), clientConf)) {
        Credentials c = new Credentials();
        fs.addDelegationTokens(user, c);
        return c;
      }
    });
    Credentials out = new Credentials();
    List<Object> written = new ArrayList<>();
    for (Token<?> token : fetched.getAllTokens()) {
      if (serviceOverride != null) {
        token.setService(new Text(serviceOverride));
      }
      out.addToken(token.getService(), token);
      written.add(Json.map("kind", token.getKind().toString(), "service", token.getService().toString()));
    }
    out.writeTokenStorageFile(new Path(new File(path).toURI()), clientConf);
    return Json.map("path", path, "user", user, "tokens", written);
  }

  /** The ready line's "kerberos" object. */
  Map<String, Object> describe() {
    Map<String, Object> principals = new LinkedHashMap<>();
    Map<String, Object> keytabs = new LinkedHashMap<>();
    for (String user : users) {
      principals.put(user, principal(user));
      keytabs.put(user, keytab(user).getAbsolutePath());
    }
    principals.put("hdfs", service("hdfs"));
    keytabs.put("hdfs", serviceKeytab.getAbsolutePath());
    return Json.map(
        "realm", kdc.getRealm(),
        "kdc", kdc.getHost() + ":" + kdc.getPort(),
        "krb5_conf", clientKrb5Conf().getAbsolutePath(),
        "protection", protection,
        "principals", principals,
        "keytabs", keytabs,
        "http_principal", service("HTTP"));
  }

  void stop() {
    kdc.stop();
  }
}
