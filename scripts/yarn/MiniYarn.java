import java.io.File;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;

import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.yarn.conf.YarnConfiguration;
import org.apache.hadoop.yarn.server.MiniYARNCluster;

/**
 * tether's test YARN: a one-node MiniYARNCluster (real ResourceManager, real NodeManager that
 * starts containers as real processes), started by {@code scripts/yarn-cluster start DIR}.
 *
 * <p>Usage: {@code java -cp <classpath> MiniYarn DIR NM_MEMORY_MB NM_VCORES}. Once the RM has
 * bound its ports and the NM has registered, it writes {@code DIR/conf/yarn-site.xml},
 * {@code DIR/conf/core-site.xml} (live ports) and then {@code DIR/cluster.env} (atomically, last:
 * its presence means "ready"), and stays up until killed. SIGTERM stops the cluster, and the
 * NM's shutdown kills the containers it started.
 *
 * <p>Why each setting is here is said next to it; most are facts about MiniYARNCluster that
 * cost time to rediscover.
 */
public final class MiniYarn {
    private MiniYarn() {}

    public static void main(String[] args) throws Exception {
        if (args.length != 3) {
            System.err.println("usage: MiniYarn DIR NM_MEMORY_MB NM_VCORES");
            System.exit(2);
        }
        File dir = new File(args[0]).getAbsoluteFile();
        int nmMemoryMb = Integer.parseInt(args[1]);
        int nmVcores = Integer.parseInt(args[2]);
        long t0 = System.nanoTime();

        YarnConfiguration conf = new YarnConfiguration();
        // capacity-scheduler.xml is not in the minicluster jar: without these keys the RM has no
        // queue to put an application in.
        conf.set("yarn.scheduler.capacity.root.queues", "default");
        conf.set("yarn.scheduler.capacity.root.default.capacity", "100");
        conf.set("yarn.scheduler.capacity.root.default.maximum-capacity", "100");
        conf.set("yarn.scheduler.capacity.root.default.state", "RUNNING");
        conf.set("yarn.scheduler.capacity.root.default.acl_submit_applications", "*");
        conf.set("yarn.scheduler.capacity.root.default.acl_administer_queue", "*");
        // In cluster mode the AM is the Spark driver (~1 GB with overhead). The default 10 % AM
        // share of the node would keep every application but the first one ACCEPTED.
        conf.set("yarn.scheduler.capacity.maximum-am-resource-percent", "1.0");
        // A developer disk at 90 % full would mark the node unhealthy and leave apps ACCEPTED.
        conf.set("yarn.nodemanager.disk-health-checker.max-disk-utilization-per-disk-percentage", "100.0");
        conf.set("yarn.nodemanager.disk-health-checker.min-free-space-per-disk-mb", "0");
        // Small containers: 512m drivers and executors (+384m overhead) round up to 1 GB, not 2.
        conf.setInt(YarnConfiguration.RM_SCHEDULER_MINIMUM_ALLOCATION_MB, 256);
        conf.setInt(YarnConfiguration.RM_SCHEDULER_MAXIMUM_ALLOCATION_MB, nmMemoryMb);
        // MiniYARNCluster overwrites the NM's memory with its own key (default 4 GB): set both.
        conf.setInt("yarn.minicluster.yarn.nodemanager.resource.memory-mb", nmMemoryMb);
        conf.setInt(YarnConfiguration.NM_PMEM_MB, nmMemoryMb);
        conf.setInt(YarnConfiguration.NM_VCORES, nmVcores);
        conf.setInt(YarnConfiguration.RM_SCHEDULER_MAXIMUM_ALLOCATION_VCORES, nmVcores);
        // Real memory enforcement (container exit -104), off in the minicluster by default.
        // The vmem check stays off: Java 17 reserves far more virtual memory than 2.1x its RSS.
        conf.setBoolean("yarn.minicluster.control-resource-monitoring", true);
        conf.setBoolean(YarnConfiguration.NM_PMEM_CHECK_ENABLED, true);
        conf.setBoolean(YarnConfiguration.NM_VMEM_CHECK_ENABLED, false);
        conf.setLong(YarnConfiguration.NM_CONTAINER_MON_INTERVAL_MS, 1000);
        // "Strict" enforcement (default on) leaves killing to cgroups' OOM killer and turns the
        // monitor's own pmem kill off; without cgroups nothing would ever be killed.
        conf.setBoolean("yarn.nodemanager.resource.memory.enforced", false);
        // Containers (spark's AM/driver, executors) need JAVA_HOME from the NM's environment.
        conf.set(YarnConfiguration.NM_ENV_WHITELIST,
                "JAVA_HOME,PATH,LANG,TZ,HADOOP_CONF_DIR,TETHER_YARN_FIXTURE");
        // Log aggregation needs a file system for the remote app-log dir; local logs are enough
        // for the tests, and the NM serves them while containers run.
        conf.setBoolean(YarnConfiguration.LOG_AGGREGATION_ENABLED, false);
        // Keep finished containers' dirs a minute, for a test to read their logs.
        conf.setInt(YarnConfiguration.DEBUG_NM_DELETE_DELAY_SEC, 60);
        // No HDFS: Spark stages its files on the local file system, which the NM shares.
        conf.set("fs.defaultFS", "file:///");

        MiniYARNCluster cluster = new MiniYARNCluster("tether", 1, 1, 1, 1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            System.err.println("MiniYarn: stopping");
            cluster.stop();
        }, "mini-yarn-stop"));
        cluster.init(conf);
        cluster.start();

        // The RM publishes its bound ports in the cluster's config once its services are up.
        Configuration live = cluster.getConfig();
        long deadline = System.currentTimeMillis() + 120_000;
        while (live.get(YarnConfiguration.RM_ADDRESS, "").endsWith(":0")
                || live.get(YarnConfiguration.RM_WEBAPP_ADDRESS, "").endsWith(":0")) {
            if (System.currentTimeMillis() > deadline) throw new IllegalStateException("RM never bound its ports");
            Thread.sleep(100);
        }
        if (!cluster.waitForNodeManagersToConnect(120_000)) {
            throw new IllegalStateException("the NodeManager did not register with the RM in 120 s");
        }

        File confDir = new File(dir, "conf");
        Files.createDirectories(confDir.toPath());
        try (OutputStream out = new FileOutputStream(new File(confDir, "yarn-site.xml"))) {
            live.writeXml(out);
        }
        Configuration core = new Configuration(false);
        core.set("fs.defaultFS", "file:///");
        core.set("hadoop.security.authentication", "simple");
        try (OutputStream out = new FileOutputStream(new File(confDir, "core-site.xml"))) {
            core.writeXml(out);
        }

        String web = live.get(YarnConfiguration.RM_WEBAPP_ADDRESS);
        String env = "HADOOP_CONF_DIR=" + confDir + "\n"
                + "YARN_CONF_DIR=" + confDir + "\n"
                + "YARN_RM_URL=http://" + web + "\n"
                + "YARN_RM_ADDRESS=" + live.get(YarnConfiguration.RM_ADDRESS) + "\n"
                + "JAVA_HOME=" + javaHome() + "\n"
                + "YARN_PID=" + ProcessHandle.current().pid() + "\n"
                + "YARN_FIXTURE_DIR=" + dir + "\n"
                + "YARN_NM_MEMORY_MB=" + nmMemoryMb + "\n";
        Path tmp = new File(dir, "cluster.env.tmp").toPath();
        Files.write(tmp, env.getBytes(StandardCharsets.UTF_8));
        Files.move(tmp, new File(dir, "cluster.env").toPath(), StandardCopyOption.ATOMIC_MOVE);
        System.err.printf("MiniYarn: ready in %.1f s, RM web http://%s%n", (System.nanoTime() - t0) / 1e9, web);

        Thread.currentThread().join(); // until SIGTERM (shutdown hook) or SIGKILL
    }

    private static String javaHome() throws IOException {
        String env = System.getenv("JAVA_HOME");
        if (env != null && !env.isEmpty()) return env;
        return System.getProperty("java.home");
    }
}
