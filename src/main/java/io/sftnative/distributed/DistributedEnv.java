package io.sftnative.distributed;

import java.util.Map;

import io.sftnative.config.ConfigException;

/**
 * Where this process stands in a data-parallel job, in torchrun's terms: its {@code rank} among {@code worldSize}
 * processes, its {@code localRank} among the {@code localWorldSize} processes of its machine, and the rendezvous
 * address (rank 0 hosts the TCP store there). A plain single process is {@link #SINGLE}.
 *
 * <p>Read from the environment torchrun, {@code srun} wrappers, Kubernetes' PyTorchJob and
 * {@code train --nproc-per-node} set: {@code RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR,
 * MASTER_PORT}.
 */
public record DistributedEnv(int rank, int worldSize, int localRank, int localWorldSize, String masterAddr,
        int masterPort) {

    public static final DistributedEnv SINGLE = new DistributedEnv(0, 1, 0, 1, "127.0.0.1", 0);

    public DistributedEnv {
        if (worldSize < 1 || rank < 0 || rank >= worldSize) {
            throw new ConfigException("RANK " + rank + " is not in [0, WORLD_SIZE " + worldSize + ")");
        }
        if (localWorldSize < 1 || localRank < 0 || localRank >= localWorldSize) {
            throw new ConfigException("LOCAL_RANK " + localRank + " is not in [0, LOCAL_WORLD_SIZE "
                    + localWorldSize + ")");
        }
        if (worldSize > 1 && (masterPort < 1 || masterPort > 65535)) {
            throw new ConfigException("MASTER_PORT " + masterPort + " is not a TCP port (1..65535)");
        }
    }

    /** More than one rank: gradients must be synchronised. */
    public boolean distributed() {
        return worldSize > 1;
    }

    /** Rank 0 writes logs, checkpoints, results and draws the progress bar. */
    public boolean isMain() {
        return rank == 0;
    }

    /** This process's environment (a single process when WORLD_SIZE is absent). */
    public static DistributedEnv fromEnvironment() {
        return from(System.getenv());
    }

    /** torchrun's variables from {@code env}; absent WORLD_SIZE (or 1 with no RANK) = a single process. */
    public static DistributedEnv from(Map<String, String> env) {
        String world = env.get("WORLD_SIZE");
        if (world == null || world.isBlank()) {
            if (env.get("RANK") != null && !env.get("RANK").isBlank() && number(env, "RANK", 0) != 0) {
                throw new ConfigException("RANK is set (" + env.get("RANK") + ") but WORLD_SIZE is not: set both"
                        + " (torchrun's environment) or neither");
            }
            return SINGLE;
        }
        int worldSize = number(env, "WORLD_SIZE", 1);
        int rank = number(env, "RANK", worldSize == 1 ? 0 : -1);
        if (rank < 0) {
            throw new ConfigException("WORLD_SIZE is " + worldSize + " but RANK is not set: every process of the job"
                    + " needs its RANK (0.." + (worldSize - 1) + ")");
        }
        int localWorld = number(env, "LOCAL_WORLD_SIZE", worldSize);
        int localRank = number(env, "LOCAL_RANK", rank % localWorld);
        String addr = env.getOrDefault("MASTER_ADDR", "").isBlank() ? "127.0.0.1" : env.get("MASTER_ADDR").trim();
        int port = number(env, "MASTER_PORT", 29500);
        return new DistributedEnv(rank, worldSize, localRank, localWorld, addr, port);
    }

    private static int number(Map<String, String> env, String key, int def) {
        return intVariable(env, key, def);
    }

    /** The whole-number environment variable {@code key}, or {@code def} when unset or blank. */
    public static Integer intVariable(Map<String, String> env, String key, Integer def) {
        String v = env.get(key);
        if (v == null || v.isBlank()) {
            return def;
        }
        try {
            return Integer.parseInt(v.trim());
        } catch (NumberFormatException e) {
            throw new ConfigException("environment variable " + key + "=" + v + " is not a whole number");
        }
    }
}
