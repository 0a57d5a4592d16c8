package dev.tether.testjob;

import java.io.File;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import org.apache.spark.SparkConf;
import org.apache.spark.SparkEnv;
import org.apache.spark.api.java.JavaSparkContext;

/**
 * tether's own Spark test job. One class, several modes, chosen by the first argument:
 *
 * <ul>
 *   <li>{@code sleep <seconds>}: sleeps without starting a SparkContext (a driver that stays
 *       RUNNING cheaply: no executor is ever launched).
 *   <li>{@code pi <partitions>}: a small Monte-Carlo pi over a real SparkContext; prints "Pi is
 *       roughly ..." to stdout.
 *   <li>{@code fail}: throws, so the driver ends FAILED.
 *   <li>{@code exit <code>}: {@code System.exit(code)}, so a non-zero code ends FAILED.
 *   <li>{@code skew <bigMB> <smallMB> <partitions> <holdMs>}: partition 0 holds bigMB of heap,
 *       the others smallMB each, all for holdMs. With 4 tasks at once in a 512m executor the sum
 *       does not fit (executor OOM, exit 52); one task per executor fits. This is the job the
 *       recovery shape exists for. Each task checks in (a file under
 *       /tmp/tether-skew/<app id>/<executor id>) once its memory is allocated and holds it until
 *       as many tasks as the executor has cores (at most the partitions) have checked in there,
 *       or holdMs passed without a new check-in: on a loaded machine an executor's tasks start
 *       seconds apart, and a fixed hold let the first finish before the last allocated (no OOM).
 *       Per executor, so a retry on a new executor does not count the dead one's check-ins.
 * </ul>
 */
public final class TestJob {
    private TestJob() {}

    public static void main(String[] args) throws Exception {
        String mode = args.length > 0 ? args[0] : "pi";
        System.out.println("tether test job: mode " + mode + " args " + Arrays.toString(args));
        switch (mode) {
            case "sleep": {
                long secs = Long.parseLong(arg(args, 1, "60"));
                Thread.sleep(secs * 1000L);
                System.out.println("slept " + secs + "s");
                return;
            }
            case "pi": {
                int parts = Integer.parseInt(arg(args, 1, "2"));
                try (JavaSparkContext sc = context()) {
                    final int n = 20000 * parts;
                    List<Integer> xs = new ArrayList<>(n);
                    for (int i = 0; i < n; i++) xs.add(i);
                    long inside = sc.parallelize(xs, parts).filter(i -> {
                        double x = Math.random() * 2 - 1, y = Math.random() * 2 - 1;
                        return x * x + y * y <= 1;
                    }).count();
                    System.out.println("Pi is roughly " + 4.0 * inside / n);
                }
                return;
            }
            case "fail":
                throw new IllegalStateException("tether test job failing on purpose");
            case "exit": {
                int code = Integer.parseInt(arg(args, 1, "3"));
                System.err.println("tether test job exiting with code " + code);
                System.exit(code);
                return;
            }
            case "skew": {
                final int big = Integer.parseInt(arg(args, 1, "280"));
                final int small = Integer.parseInt(arg(args, 2, "110"));
                final int parts = Integer.parseInt(arg(args, 3, "4"));
                final long holdMs = Long.parseLong(arg(args, 4, "4000"));
                try (JavaSparkContext sc = context()) {
                    List<Integer> ids = new ArrayList<>();
                    for (int i = 0; i < parts; i++) ids.add(i);
                    final String app = sc.sc().applicationId();
                    long total = sc.parallelize(ids, parts)
                            .map(i -> hold(i == 0 ? big : small, holdMs, app, i, parts))
                            .reduce(Long::sum);
                    System.out.println("skew done: held " + total + " MB in total");
                }
                return;
            }
            default:
                throw new IllegalArgumentException("unknown mode " + mode + " (sleep, pi, fail, exit, skew)");
        }
    }

    private static JavaSparkContext context() {
        return new JavaSparkContext(new SparkConf());
    }

    private static String arg(String[] args, int i, String dflt) {
        return args.length > i ? args[i] : dflt;
    }

    /**
     * Allocates mb MiB in 256 KiB chunks (below G1's humongous threshold), checks in, and keeps
     * it until this executor's slots all checked in or holdMs passed since the last new check-in.
     */
    private static long hold(int mb, long holdMs, String app, int part, int parts)
            throws InterruptedException, IOException {
        SparkEnv env = SparkEnv.get();
        File dir = new File("/tmp/tether-skew/" + app + "/" + env.executorId());
        int slots = Math.min(parts, env.conf().getInt("spark.executor.cores", 1));
        List<byte[]> chunks = new ArrayList<>();
        for (int i = 0; i < mb * 4; i++) {
            byte[] c = new byte[256 * 1024];
            c[0] = 1; // touch it, so the allocation is real
            chunks.add(c);
        }
        dir.mkdirs();
        new File(dir, Integer.toString(part)).createNewFile();
        int seen = 0;
        long deadline = System.currentTimeMillis() + holdMs;
        while (System.currentTimeMillis() < deadline) {
            String[] in = dir.list();
            int n = in == null ? 0 : in.length;
            if (n >= slots) {
                break;
            }
            if (n > seen) {
                seen = n;
                deadline = System.currentTimeMillis() + holdMs;
            }
            Thread.sleep(100);
        }
        Thread.sleep(500);
        long sum = 0;
        for (byte[] c : chunks) sum += c[0];
        return sum / 4;
    }
}
