package io.kiln.model.llama;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.kiln.DType;
import io.kiln.InvalidInputException;
import io.kiln.cli.ExitCodes;
import io.kiln.cli.KilnCli;
import io.kiln.execution.llm.CpuLlamaRunner;
import io.kiln.execution.llm.KvPoolSpec;
import io.kiln.execution.llm.SequenceChunk;
import io.kiln.model.safetensors.SafetensorsModel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class RandomLlamaModelTest {
  @TempDir Path dir;

  @Test
  void commandWritesALoadableTinyModel() throws Exception {
    Path out = dir.resolve("tiny");
    int rc =
        KilnCli.newCommandLine()
            .execute(
                "make-random-model",
                "--shape",
                "tiny",
                "--seed",
                "7",
                "--dtype",
                "f16",
                "-o",
                out.toString());
    assertEquals(0, rc);
    assertTrue(Files.isRegularFile(out.resolve("config.json")));
    assertTrue(Files.isRegularFile(out.resolve("generation_config.json")));
    LlamaConfig c = LlamaConfig.load(out);
    assertEquals("llama3", c.ropeScaling().type());
    assertTrue(c.tieWordEmbeddings());
    try (SafetensorsModel st = SafetensorsModel.open(out)) {
      assertEquals(DType.F16, st.tensor("model.embed_tokens.weight").dtype());
      assertFalse(st.contains("lm_head.weight"));
      float[] norm = st.readFloats("model.norm.weight", 64);
      assertEquals(1f, norm[5]);
      float[] q = st.readFloats("model.layers.0.self_attn.q_proj.weight", 64, 64);
      double ss = 0;
      for (float v : q) {
        ss += v * v;
      }
      assertEquals(1 / Math.sqrt(64), Math.sqrt(ss / q.length), 0.01, "q_proj std");
    }
    try (CpuLlamaRunner runner = CpuLlamaRunner.open(out, KvPoolSpec.ofUsableBlocks(3, 16))) {
      float[] logits =
          runner
              .forward(
                  List.of(new SequenceChunk(1, new int[] {1, 17, 42, 99}, 0, new int[] {1}, true)))[
              0];
      float min = Float.MAX_VALUE;
      float max = -Float.MAX_VALUE;
      for (float v : logits) {
        assertTrue(Float.isFinite(v));
        min = Math.min(min, v);
        max = Math.max(max, v);
      }
      assertTrue(max - min > 4, "logits should not be near-uniform, range " + (max - min));
    }
  }

  @Test
  void sameSeedSameBytesOtherSeedOtherBytes() throws Exception {
    for (String name : List.of("a", "b")) {
      RandomLlamaModel.write(
          RandomLlamaModel.shape("tiny"),
          3,
          DType.BF16,
          dir.resolve(name),
          RandomLlamaModel.DEFAULT_SHARD_BYTES,
          p -> {});
    }
    RandomLlamaModel.write(
        RandomLlamaModel.shape("tiny"),
        4,
        DType.BF16,
        dir.resolve("c"),
        RandomLlamaModel.DEFAULT_SHARD_BYTES,
        p -> {});
    byte[] a = Files.readAllBytes(dir.resolve("a/model.safetensors"));
    assertArrayEquals(a, Files.readAllBytes(dir.resolve("b/model.safetensors")));
    assertFalse(java.util.Arrays.equals(a, Files.readAllBytes(dir.resolve("c/model.safetensors"))));
  }

  @Test
  void largeModelsAreShardedWithAnIndex() {
    Path out = dir.resolve("sharded");
    RandomLlamaModel.write(RandomLlamaModel.shape("tiny"), 1, DType.F32, out, 40_000, p -> {});
    assertFalse(Files.exists(out.resolve("model.safetensors")));
    assertTrue(Files.isRegularFile(out.resolve(SafetensorsModel.INDEX_FILE)));
    LlamaWeights w = LlamaWeights.load(out);
    assertEquals(2, w.layers.length);
    assertTrue(w.lmHead == w.embedding, "tied lm_head");
    Path single = dir.resolve("single");
    RandomLlamaModel.write(
        RandomLlamaModel.shape("tiny"),
        1,
        DType.F32,
        single,
        RandomLlamaModel.DEFAULT_SHARD_BYTES,
        p -> {});
    assertArrayEquals(LlamaWeights.load(single).layers[1].wDown, w.layers[1].wDown);
  }

  @Test
  void qwen2ConfigGetsBiases() throws Exception {
    Path cfg = dir.resolve("qwen.json");
    Files.writeString(
        cfg,
        "{\"architectures\":[\"Qwen2ForCausalLM\"],\"model_type\":\"qwen2\",\"hidden_size\":32,"
            + "\"intermediate_size\":48,\"num_hidden_layers\":1,\"num_attention_heads\":4,"
            + "\"num_key_value_heads\":2,\"vocab_size\":64,\"max_position_embeddings\":128,"
            + "\"tie_word_embeddings\":false,\"rms_norm_eps\":1e-06}");
    Path out = dir.resolve("qwen");
    assertEquals(
        0,
        KilnCli.newCommandLine()
            .execute(
                "make-random-model",
                "--shape",
                cfg.toString(),
                "--dtype",
                "f32",
                "-o",
                out.toString()));
    LlamaWeights w = LlamaWeights.load(out);
    assertEquals(16, w.layers[0].bk.length);
    assertTrue(w.layers[0].bo == null);
  }

  @Test
  void exportLlmCommandWritesAnOnnxDecoder() {
    Path model = dir.resolve("m");
    assertEquals(
        0,
        KilnCli.execute(
            "make-random-model", "--shape", "tiny", "--dtype", "f32", "-o", model.toString()));
    Path onnx = dir.resolve("onnx");
    assertEquals(
        0,
        KilnCli.execute(
            "export-llm", "--model", model.toString(), "-o", onnx.toString(), "--external-data"));
    assertTrue(Files.isRegularFile(onnx.resolve("model.onnx")));
    assertTrue(Files.isRegularFile(onnx.resolve("model.onnx.data")));
    assertTrue(Files.isRegularFile(onnx.resolve("config.json")));
    assertEquals(
        ExitCodes.MODEL,
        KilnCli.execute(
            "export-llm", "--model", dir.resolve("absent").toString(), "-o", onnx.toString()));
  }

  @Test
  void unknownShapeIsRejected() {
    assertThrows(InvalidInputException.class, () -> RandomLlamaModel.shape("gpt-5"));
    assertEquals(
        ExitCodes.INPUT,
        KilnCli.execute(
            "make-random-model", "--shape", "gpt-5", "-o", dir.resolve("x").toString()));
    assertEquals(
        ExitCodes.INPUT,
        KilnCli.execute(
            "make-random-model",
            "--shape",
            "tiny",
            "--dtype",
            "int8",
            "-o",
            dir.resolve("y").toString()));
  }
}
