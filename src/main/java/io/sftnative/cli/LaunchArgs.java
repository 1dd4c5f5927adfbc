package io.sftnative.cli;

import static io.sftnative.distributed.DistributedEnv.intVariable;

import java.util.List;
import java.util.Map;

import io.sftnative.distributed.LocalLauncher;
import picocli.CommandLine.Option;

/**
 * {@code --nproc-per-node N [--nnodes M --node-rank R --master-addr A --master-port P]} of {@code train}: start
 * the local ranks of a data-parallel job (torchrun's options), or LLaMA-Factory's launcher variables
 * ({@code FORCE_TORCHRUN=1} with {@code NPROC_PER_NODE}, {@code NNODES}, {@code NODE_RANK}, {@code MASTER_ADDR},
 * {@code MASTER_PORT}). A process that already has a {@code RANK} (started by torchrun, srun or this launcher)
 * never launches: it is a rank.
 */
final class LaunchArgs {
    @Option(names = "--nproc-per-node", paramLabel = "N",
            description = "Start N data-parallel ranks on this machine (child JVMs sharing the cores).")
    Integer nprocPerNode;

    @Option(names = "--nnodes", paramLabel = "M", description = "Machines in the job (default 1).")
    Integer nnodes;

    @Option(names = "--node-rank", paramLabel = "R", description = "This machine's index in [0, M) (default 0).")
    Integer nodeRank;

    @Option(names = "--master-addr", paramLabel = "ADDR",
            description = "Address of node 0, where rank 0 hosts the rendezvous (default 127.0.0.1).")
    String masterAddr;

    @Option(names = "--master-port", paramLabel = "PORT",
            description = "Rendezvous port on node 0 (default: a free port on one machine, 29500 on several).")
    Integer masterPort;

    /** The job to launch, or null when this process trains by itself (or already is a rank). */
    LocalLauncher.Job job(Map<String, String> env) {
        if (env.get("RANK") != null && !env.get("RANK").isBlank()) {
            return null;
        }
        boolean force = "1".equals(env.get("FORCE_TORCHRUN")) || "true".equalsIgnoreCase(env.get("FORCE_TORCHRUN"));
        Integer nproc = nprocPerNode != null ? nprocPerNode : force ? intVariable(env, "NPROC_PER_NODE", null) : null;
        int nodes = nnodes != null ? nnodes : force ? intVariable(env, "NNODES", 1) : 1;
        if (nproc == null) {
            if (force) {
                nproc = 1; // LLaMA-Factory counts GPUs here; on the CPU one rank unless NPROC_PER_NODE says more
            } else if (nnodes != null || nodeRank != null || masterAddr != null || masterPort != null) {
                throw new IllegalArgumentException("--nnodes, --node-rank, --master-addr and --master-port describe"
                        + " a job: give --nproc-per-node too");
            } else {
                return null;
            }
        }
        int node = nodeRank != null ? nodeRank : force ? intVariable(env, "NODE_RANK", 0) : 0;
        String addr = masterAddr != null ? masterAddr : env.getOrDefault("MASTER_ADDR", "127.0.0.1");
        int port = masterPort != null ? masterPort
                : env.get("MASTER_PORT") != null ? intVariable(env, "MASTER_PORT", 0) : nodes > 1 ? 29500 : 0;
        return new LocalLauncher.Job(nproc, nodes, node, addr, port);
    }

    /** This JVM's command line for {@code train args}: the same java, flags and class path, Main as entry point. */
    static List<String> rankCommand(List<String> trainArgs) {
        return LocalLauncher.trainCommand(trainArgs);
    }
}
