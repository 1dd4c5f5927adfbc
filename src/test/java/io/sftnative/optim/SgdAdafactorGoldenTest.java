package io.sftnative.optim;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.InputStream;
import java.util.LinkedHashMap;
import java.util.Map;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import io.sftnative.torch.TorchRuntime;

/**
 * optim sgd against torch.optim.SGD, optim adafactor against HF's Adafactor update rule (tools/golden/
 * gen_optimizers_golden.py), five steps each with HF's two weight-decay groups; plus the state size per parameter.
 */
class SgdAdafactorGoldenTest {
    @BeforeAll
    static void boot() {
        TorchRuntime.boot(1);
    }

    static JsonNode load(String name) throws Exception {
        try (InputStream in = SgdAdafactorGoldenTest.class.getResourceAsStream("/golden/optim/" + name)) {
            return new ObjectMapper().readTree(in);
        }
    }

    /** Replays the golden trajectory; returns the optimizer's state bytes after it. */
    static long replay(JsonNode g, boolean adafactor, double tol) {
        try (PointerScope scope = new PointerScope()) {
            Map<String, Tensor> params = new LinkedHashMap<>();
            for (JsonNode n : g.get("names")) {
                String name = n.asText();
                params.put(name, HostArrays.tensor(HostArrays.floats(g.get("init").get(name)),
                        HostArrays.longs(g.get("shapes").get(name)), ScalarType.Float).requires_grad_(true));
            }
            double wd = g.get("weight_decay").asDouble();
            try (Optimizer opt = adafactor ? new Adafactor(params, wd, ParamGroups::decays)
                    : new Sgd(params, wd, ParamGroups::decays)) {
                JsonNode steps = g.get("steps");
                for (int k = 0; k < steps.size(); k++) {
                    for (Map.Entry<String, Tensor> e : params.entrySet()) {
                        e.getValue().mutable_grad().put(HostArrays.tensor(HostArrays.floats(g.get("grads").get(k)
                                .get(e.getKey())), HostArrays.longs(g.get("shapes").get(e.getKey())),
                                ScalarType.Float));
                    }
                    opt.step(g.get("lr").asDouble());
                    opt.zeroGrad();
                    for (Map.Entry<String, Tensor> e : params.entrySet()) {
                        float[] want = HostArrays.floats(steps.get(k).get(e.getKey()));
                        float[] got = HostArrays.floats(e.getValue());
                        for (int i = 0; i < want.length; i++) {
                            assertEquals(want[i], got[i], tol * Math.max(1, Math.abs(want[i])),
                                    e.getKey() + "[" + i + "] after step " + (k + 1));
                        }
                    }
                }
                return opt.stateBytes();
            }
        }
    }

    @Test
    void sgdMatchesTorch() throws Exception {
        // the same two fp32 ops as torch (add with alpha, then add_ with -lr): equal to rounding
        assertEquals(0, replay(load("sgd.json"), false, 1e-6), "plain SGD keeps no state");
    }

    @Test
    void adafactorMatchesHfsRule() throws Exception {
        JsonNode g = load("adafactor.json");
        // fp32 reductions (means, the rms norm) may sum in another order than torch's: a few ulps per step
        long bytes = replay(g, true, 2e-5);
        long params = 0;
        long expected = 0;
        for (JsonNode n : g.get("names")) {
            JsonNode s = g.get("shapes").get(n.asText());
            long numel = 1;
            for (JsonNode d : s) {
                numel *= d.asLong();
            }
            params += numel;
            expected += 4L * (s.size() >= 2 ? s.get(0).asLong() + s.get(1).asLong() : numel) + 4; // + step scalar
        }
        assertEquals(expected, bytes, "factored second moments: rows + cols floats per matrix");
        assertTrue(bytes < 8L * params, "less state than AdamW's 8 bytes per parameter");
    }
}
