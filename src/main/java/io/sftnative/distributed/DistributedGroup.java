package io.sftnative.distributed;

import java.net.InetAddress;
import java.util.List;
import java.util.Locale;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.javacpp.SizeTPointer;
import org.bytedeco.javacpp.chrono.Milliseconds;
import org.bytedeco.pytorch.AllreduceOptions;
import org.bytedeco.pytorch.Backend;
import org.bytedeco.pytorch.BackendOptional;
import org.bytedeco.pytorch.BarrierOptions;
import org.bytedeco.pytorch.BroadcastOptions;
import org.bytedeco.pytorch.GlooDeviceVector;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.ProcessGroup;
import org.bytedeco.pytorch.ProcessGroupGloo;
import org.bytedeco.pytorch.ReduceOptions;
import org.bytedeco.pytorch.TCPStore;
import org.bytedeco.pytorch.TCPStoreOptions;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.Work;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

import io.sftnative.config.ConfigException;
import io.sftnative.config.DistributedArgs;

/**
 * This process's membership in a data-parallel job over libtorch's c10d: the rendezvous {@link TCPStore} (rank 0
 * hosts its server), the Gloo backend that runs the collectives on CPU tensors, on a GPU also the NCCL backend for
 * CUDA tensors (as torch's {@code "cpu:gloo,cuda:nccl"}: step totals and hashes stay on Gloo), and the
 * {@link ProcessGroup} that wraps them for {@code broadcast_coalesced}. The single owner of all of them: they live as
 * long as this object, outside
 * every {@link PointerScope} (JavaCPP deletes a TCPStore whose Java object is closed or collected even while the
 * group still uses it, which stops rank 0's store server under the other ranks), and {@link #close()} frees them.
 *
 * <p>A failed collective makes the group unusable (c10d's behaviour): every method turns the native error into a
 * {@link DistributedException} that names this rank and the operation.
 */
@SuppressWarnings("try") // scopes and guards are held for their side effect
public final class DistributedGroup implements AutoCloseable {
    private final DistributedEnv env;
    private final long timeoutMillis;
    private final TCPStore store;
    private final ProcessGroupGloo gloo;
    private final Backend nccl; // CUDA tensors; null on the CPU
    private final ProcessGroup group;
    private final BackendOptional glooSlot; // what the group was given; holds a reference to gloo
    private final BackendOptional ncclSlot; // null on the CPU
    private boolean closed;

    private DistributedGroup(DistributedEnv env, long timeoutMillis, TCPStore store, ProcessGroupGloo gloo,
            Backend nccl, ProcessGroup group, BackendOptional glooSlot, BackendOptional ncclSlot) {
        this.env = env;
        this.timeoutMillis = timeoutMillis;
        this.store = store;
        this.gloo = gloo;
        this.nccl = nccl;
        this.group = group;
        this.glooSlot = glooSlot;
        this.ncclSlot = ncclSlot;
    }

    /**
     * Joins the job: connects to (rank 0: starts) the store at MASTER_ADDR:MASTER_PORT and builds the Gloo group
     * (and, when {@code cudaDevice}, the NCCL one); blocks until every rank has joined or {@code ddp_timeout} passed.
     * libtorch must be booted.
     */
    public static DistributedGroup join(DistributedEnv env, DistributedArgs args, boolean cudaDevice) {
        checkBackend(args.backend(), cudaDevice);
        long timeout = Math.multiplyExact(args.timeoutSeconds(), 1000L);
        // no PointerScope here: these objects must outlive any scope; retainReference keeps them alive even when a
        // caller has one open, and close() releases them
        TCPStore store;
        try {
            TCPStoreOptions o = new TCPStoreOptions();
            o.port((short) env.masterPort()); // uint16_t: values above 32767 wrap to the right bits
            o.isServer(env.rank() == 0);
            o.numWorkers(new SizeTPointer(1).put((long) env.worldSize()));
            o.waitWorkers(false);
            o.timeout(new Milliseconds(timeout));
            store = new TCPStore(env.masterAddr(), o);
            store.retainReference();
        } catch (RuntimeException e) {
            throw new DistributedException("rank " + env.rank() + " could not " + (env.rank() == 0 ? "start" : "reach")
                    + " the rendezvous store at " + env.masterAddr() + ":" + env.masterPort() + " within "
                    + args.timeoutSeconds() + " s (" + firstLine(e) + "). " + (env.rank() == 0
                            ? "Is the port in use? Choose another MASTER_PORT / --master-port."
                            : "Is rank 0 running, and MASTER_ADDR/MASTER_PORT the same on every rank?"), e);
        }
        Backend nccl = null;
        ProcessGroupGloo gloo = null;
        ProcessGroup pg = null;
        BackendOptional glooSlot = null;
        BackendOptional ncclSlot = null;
        try {
            ProcessGroupGloo.Options o = ProcessGroupGloo.Options.create(new Milliseconds(timeout));
            o.devices(new GlooDeviceVector(glooDevice(env.masterAddr())));
            o.threads(1);
            gloo = new ProcessGroupGloo(store, env.rank(), env.worldSize(), o);
            gloo.retainReference();
            pg = new ProcessGroup(env.rank(), env.worldSize());
            pg.retainReference();
            glooSlot = new BackendOptional(gloo); // holds a reference to gloo until close() releases it
            glooSlot.retainReference();
            pg.setBackend(torch.DeviceType.CPU, ProcessGroup.BackendType.GLOO, glooSlot);
            pg.setDefaultBackend(ProcessGroup.BackendType.GLOO);
            if (cudaDevice) {
                nccl = NcclBackend.create(store, env.rank(), env.worldSize(), timeout);
                ncclSlot = new BackendOptional(nccl);
                ncclSlot.retainReference();
                pg.setBackend(torch.DeviceType.CUDA, ProcessGroup.BackendType.NCCL, ncclSlot);
            }
            return new DistributedGroup(env, timeout, store, gloo, nccl, pg, glooSlot, ncclSlot);
        } catch (RuntimeException e) {
            release(pg, glooSlot, ncclSlot, gloo, nccl, store);
            if (e instanceof ConfigException) {
                throw e;
            }
            throw new DistributedException("rank " + env.rank() + " of " + env.worldSize() + ": the other ranks did"
                    + " not all join within ddp_timeout (" + args.timeoutSeconds() + " s): " + firstLine(e)
                    + ". Start WORLD_SIZE processes with the same MASTER_ADDR/MASTER_PORT.", e);
        }
    }

    /**
     * Releases c10d objects in the order that frees them: the group (it holds the backends), the optionals handed
     * to it (each holds a backend), the backends (each holds the store), and the store last. The order matters: the
     * store is a plain C++ object that JavaCPP deletes outright, while the backends hold it by intrusive_ptr. Deleted
     * while a backend still lived — the optionals once kept them alive until the garbage collector freed the
     * optionals — the backend's later destruction wrote into freed memory, and glibc aborted the JVM at some later
     * allocation ("corrupted double-linked list"). Nulls are skipped.
     */
    private static void release(org.bytedeco.javacpp.Pointer... inOrder) {
        for (org.bytedeco.javacpp.Pointer p : inOrder) {
            if (p != null) {
                p.releaseReference();
            }
        }
    }

    /** ddp_backend: Gloo for CPU tensors; NCCL for CUDA tensors (Gloo cannot reduce them here). */
    static void checkBackend(String backend, boolean cudaDevice) {
        if (cudaDevice && "gloo".equals(backend)) {
            throw new ConfigException("ddp_backend: gloo reduces CPU tensors, but this run trains on a GPU: use"
                    + " ddp_backend: nccl (the default on a GPU)");
        }
        if (!cudaDevice && "nccl".equals(backend)) {
            throw new ConfigException("ddp_backend: nccl runs collectives on CUDA tensors, but this run trains on the"
                    + " CPU: use ddp_backend: gloo (the default on the CPU)");
        }
    }

    /** Gloo's network device: GLOO_SOCKET_IFNAME when set (as torch), loopback for a local job, else the host's. */
    private static org.bytedeco.pytorch.gloo.Device glooDevice(String masterAddr) {
        String iface = System.getenv("GLOO_SOCKET_IFNAME");
        if (iface != null && !iface.isBlank()) {
            return ProcessGroupGloo.createDeviceForInterface(iface.split(",")[0].trim());
        }
        boolean loopback;
        try {
            loopback = InetAddress.getByName(masterAddr).isLoopbackAddress();
        } catch (java.io.IOException e) {
            loopback = false;
        }
        return loopback ? ProcessGroupGloo.createDeviceForHostname("127.0.0.1")
                : ProcessGroupGloo.createDefaultDevice();
    }

    public DistributedEnv env() {
        return env;
    }

    public int rank() {
        return env.rank();
    }

    public int worldSize() {
        return env.worldSize();
    }

    /** Sums {@code values} over all ranks (float64: counts below 2^53 stay exact); returns the sums. */
    public double[] allReduceSum(double[] values) {
        try (PointerScope scope = new PointerScope()) {
            Tensor t = torch.zeros(new long[] {values.length}, new TensorOptions(ScalarType.Double)); // (n,) float64
            t.data_ptr_double().put(values);
            waitFor(gloo.allreduce(new TensorVector(t), new AllreduceOptions()), "all-reduce of step totals");
            double[] out = new double[values.length];
            t.contiguous().data_ptr_double().get(out);
            return out;
        }
    }

    /** The backend for {@code t}'s device: NCCL for CUDA tensors, Gloo for CPU ones. */
    private Backend backendFor(Tensor t) {
        return t.is_cuda() && nccl != null ? nccl : gloo;
    }

    /** Starts an in-place SUM all-reduce of {@code t} (contiguous, CPU or, with NCCL, CUDA); {@link #await} it. */
    Work allReduceAsync(Tensor t) {
        try {
            return backendFor(t).allreduce(new TensorVector(t), new AllreduceOptions());
        } catch (RuntimeException e) {
            throw failed("gradient all-reduce", e);
        }
    }

    void await(Work w, String what) {
        waitFor(w, what);
    }

    /** ZeRO: {@code out} (N·k,) receives every rank's {@code in} (k,) in rank order (all-gather into one tensor). */
    void allGather(Tensor out, Tensor in, String what) {
        try {
            waitFor(backendFor(in)._allgather_base(out, in), what);
        } catch (RuntimeException e) {
            throw e instanceof DistributedException ? e : failed(what, e);
        }
    }

    /** ZeRO: {@code out} (k,) receives the SUM over the ranks of block {@code rank} of their {@code in} (N·k,). */
    void reduceScatter(Tensor out, Tensor in, String what) {
        try {
            waitFor(backendFor(in)._reduce_scatter_base(out, in), what);
        } catch (RuntimeException e) {
            throw e instanceof DistributedException ? e : failed(what, e);
        }
    }

    /**
     * ZeRO-3: starts a broadcast of rank {@code root}'s {@code t} (contiguous) into {@code t} on every rank, over the
     * backend for its device; {@link #await} the returned work (it keeps {@code t}'s storage alive until it
     * completes), which the caller owns.
     */
    Work broadcastAsync(Tensor t, int root, String what) {
        try (PointerScope scope = new PointerScope()) {
            return backendFor(t).broadcast(new TensorVector(t), new BroadcastOptions().rootRank(root))
                    .retainReference();
        } catch (RuntimeException e) {
            throw failed(what, e);
        }
    }

    /**
     * ZeRO-2/3: starts a SUM reduce of every rank's {@code t} (contiguous) into rank {@code root}'s, over the backend
     * for its device (on the other ranks {@code t} is scratch afterwards); {@link #await} the returned work (it keeps
     * {@code t}'s storage alive until it completes), which the caller owns.
     */
    Work reduceAsync(Tensor t, int root, String what) {
        try (PointerScope scope = new PointerScope()) {
            return backendFor(t).reduce(new TensorVector(t), new ReduceOptions().rootRank(root)).retainReference();
        } catch (RuntimeException e) {
            throw failed(what, e);
        }
    }

    /** Copies rank 0's values into {@code tensors} on every rank (DDP's initial parameter sync). */
    public void broadcastFromRank0(List<Tensor> tensors) {
        try (PointerScope scope = new PointerScope(); NoGradGuard noGrad = new NoGradGuard()) {
            torch.broadcast_coalesced(group, new TensorVector(tensors.toArray(new Tensor[0])), 64L << 20, 0);
        } catch (RuntimeException e) {
            throw failed("initial broadcast of the trainable parameters", e);
        }
    }

    /** Waits until every rank got here (timeout ddp_timeout). */
    public void barrier(String what) {
        try (PointerScope scope = new PointerScope()) {
            BarrierOptions o = new BarrierOptions();
            o.timeout(new Milliseconds(timeoutMillis));
            waitFor(gloo.barrier(o), what);
        }
    }

    /** The store every rank shares (small keys: hashes, heartbeats). */
    TCPStore store() {
        return store;
    }

    private void waitFor(Work w, String what) {
        try {
            w._wait();
        } catch (RuntimeException e) {
            throw failed(what, e);
        }
    }

    DistributedException failed(String what, RuntimeException e) {
        String msg = firstLine(e);
        String why = msg.contains("Connection closed by peer") || msg.contains("Connection reset")
                ? "another rank stopped (it crashed, was killed or failed; its own error names the cause)"
                : msg.toLowerCase(Locale.ROOT).contains("timed out") || msg.contains("Timed out")
                        ? "another rank did not take part within ddp_timeout (it hangs or is much slower)"
                        : "the collective failed";
        return new DistributedException("rank " + env.rank() + " of " + env.worldSize() + ": " + what + " failed: "
                + why + " [" + msg + "]", e);
    }

    static String firstLine(Throwable e) {
        String m = String.valueOf(e.getMessage());
        int i = m.indexOf('\n');
        return i < 0 ? m : m.substring(0, i);
    }

    /**
     * Frees the group, the backends and, last, the store (rank 0 stops serving the others then). Idempotent.
     */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        release(group, glooSlot, ncclSlot, gloo, nccl, store);
    }
}
