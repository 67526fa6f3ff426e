package io.kiln.execution.llm;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.kiln.DType;
import io.kiln.InvalidInputException;
import io.kiln.ModelException;
import io.kiln.model.llama.LlamaOnnxExporter;
import io.kiln.model.llama.PublicLlama;
import io.kiln.model.llama.RandomLlamaModel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** The exported ONNX decoder, run on ONNX Runtime, against the direct CPU forward pass. */
class OnnxDecoderRunnerTest {
  private static final KvPoolSpec POOL = KvPoolSpec.ofUsableBlocks(63, 16);

  @TempDir Path dir;

  private static double relativeError(float[] expected, float[] actual) {
    double num = 0;
    double den = 0;
    for (int i = 0; i < expected.length; i++) {
      num += (expected[i] - actual[i]) * (double) (expected[i] - actual[i]);
      den += expected[i] * (double) expected[i];
    }
    return Math.sqrt(num / den);
  }

  private static int[] randomTokens(int n, int vocab, long seed) {
    Random r = new Random(seed);
    int[] t = new int[n];
    for (int i = 0; i < n; i++) {
      t[i] = r.nextInt(vocab);
    }
    return t;
  }

  private static final String QWEN2_WITH_BIAS =
      "{\"architectures\":[\"Qwen2ForCausalLM\"],\"model_type\":\"qwen2\",\"hidden_size\":64,"
          + "\"intermediate_size\":96,\"num_hidden_layers\":2,\"num_attention_heads\":4,"
          + "\"num_key_value_heads\":1,\"vocab_size\":200,\"max_position_embeddings\":256,"
          + "\"rope_theta\":1000000.0,\"tie_word_embeddings\":false,\"rms_norm_eps\":1e-06}";
  private static final String MISTRAL_WINDOW_8 =
      "{\"architectures\":[\"MistralForCausalLM\"],\"model_type\":\"mistral\",\"hidden_size\":64,"
          + "\"intermediate_size\":96,\"num_hidden_layers\":2,\"num_attention_heads\":4,"
          + "\"num_key_value_heads\":2,\"head_dim\":16,\"vocab_size\":200,"
          + "\"max_position_embeddings\":256,\"sliding_window\":8,\"rms_norm_eps\":1e-05}";

  /** tiny: GQA, tied, llama3 rope; qwen2: q/k/v bias, one KV head; mistral: sliding window. */
  @ParameterizedTest
  @ValueSource(strings = {"tiny", "qwen2", "mistral"})
  void randomModelRoundTripsThroughTheExport(String shape) throws Exception {
    Path model = dir.resolve(shape);
    ObjectNode config =
        shape.equals("tiny")
            ? RandomLlamaModel.shape("tiny")
            : (ObjectNode)
                new ObjectMapper()
                    .readTree(shape.equals("qwen2") ? QWEN2_WITH_BIAS : MISTRAL_WINDOW_8);
    RandomLlamaModel.write(
        config, 11, DType.F16, model, RandomLlamaModel.DEFAULT_SHARD_BYTES, p -> {});
    Path onnx = LlamaOnnxExporter.export(model, dir.resolve("onnx"), false);
    OnnxModelCheck.assertValid(onnx);
    int[] prompt = randomTokens(23, 200, 5);
    try (CpuLlamaRunner cpu = CpuLlamaRunner.open(model, POOL);
        OnnxDecoderRunner ort = OnnxDecoderRunner.open(onnx.getParent(), POOL, 2)) {
      assertEquals(cpu.spec(), ort.spec());
      // Prefill in two chunks, then greedy decode; logits agree at every step.
      GreedyLoop.Result a = GreedyLoop.run(cpu, prompt, 24, 9, 1);
      GreedyLoop.Result b = GreedyLoop.run(ort, prompt, 24, 9, 1);
      double err = relativeError(a.promptLogits(), b.promptLogits());
      assertTrue(err < 1e-5, "prompt logits relative error " + err);
      assertArrayEquals(a.tokens(), b.tokens());
    }
  }

  @Test
  void batchedDecodeWithDifferentPastLengthsMatchesTheCpuRunner() {
    Path model = dir.resolve("tiny");
    RandomLlamaModel.write(
        RandomLlamaModel.shape("tiny"),
        12,
        DType.F32,
        model,
        RandomLlamaModel.DEFAULT_SHARD_BYTES,
        p -> {});
    Path onnx = LlamaOnnxExporter.export(model, dir.resolve("onnx"), true);
    assertTrue(Files.isRegularFile(onnx.resolveSibling("model.onnx.data")));
    try (CpuLlamaRunner cpu = CpuLlamaRunner.open(model, POOL);
        OnnxDecoderRunner ort = OnnxDecoderRunner.open(onnx, POOL, 2)) {
      int[] lengths = {5, 17, 33};
      List<SequenceChunk> prefill = new ArrayList<>();
      for (int s = 0; s < lengths.length; s++) {
        prefill.add(
            new SequenceChunk(
                s,
                randomTokens(lengths[s], 256, 40 + s),
                0,
                GreedyLoop.blocks(1 + 4 * s, 64, 16),
                true));
      }
      float[][] expected = cpu.forward(prefill);
      float[][] actual = ort.forward(prefill);
      for (int step = 0; step < 5; step++) {
        List<SequenceChunk> decode = new ArrayList<>();
        for (int s = 0; s < lengths.length; s++) {
          double err = relativeError(expected[s], actual[s]);
          assertTrue(err < 1e-5, "step " + step + " sequence " + s + " relative error " + err);
          int next = GreedyLoop.argmax(expected[s]);
          assertEquals(next, GreedyLoop.argmax(actual[s]));
          decode.add(
              new SequenceChunk(
                  s, new int[] {next}, lengths[s] + step, prefill.get(s).blockTable(), true));
        }
        expected = cpu.forward(decode);
        actual = ort.forward(decode);
      }
      assertThrows(
          InvalidInputException.class,
          () ->
              ort.forward(
                  List.of(
                      new SequenceChunk(
                          1, new int[] {1, 2}, 511, GreedyLoop.blocks(1, 513, 16), true))));
    }
  }

  @Test
  void exportOfThePublicModelReproducesTheReferenceTokens() {
    Path onnx = LlamaOnnxExporter.export(PublicLlama.directory(), dir.resolve("public"), false);
    OnnxModelCheck.assertValid(onnx);
    try (OnnxDecoderRunner ort =
        OnnxDecoderRunner.open(onnx, KvPoolSpec.ofUsableBlocks(15, 16), 2)) {
      for (PublicLlama.Case c : PublicLlama.cases()) {
        GreedyLoop.Result r = GreedyLoop.run(ort, c.prompt(), c.greedyNewTokens().length, 64, 1);
        float max = 0;
        for (int i = 0; i < c.lastLogits().length; i++) {
          max = Math.max(max, Math.abs(c.lastLogits()[i] - r.promptLogits()[i]));
        }
        assertTrue(max <= 1e-3f, "last_logits max abs error " + max);
        assertArrayEquals(c.greedyNewTokens(), r.tokens());
      }
    }
  }

  @Test
  void notADecoderIsATypedError() throws Exception {
    Path bert = PublicLlama.directory().resolveSibling("bert").resolve("model.onnx");
    org.junit.jupiter.api.Assumptions.assumeTrue(Files.isRegularFile(bert));
    ModelException e =
        assertThrows(ModelException.class, () -> OnnxDecoderRunner.open(bert, POOL, 1));
    assertTrue(e.getMessage().contains("not a decoder"), e.getMessage());
  }
}
