package io.kiln.execution.llm.gpu;

import io.kiln.execution.llm.SequenceChunk;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;

/**
 * For the device cross-check against Hugging Face on a real model shape: runs one prompt through
 * the CUDA runner and writes the prompt's last logits as little-endian float32, then a line of
 * greedy tokens. Usage: {@code LogitsDump MODEL_DIR f16|f32 ID,ID,... OUT.bin NEW_TOKENS}.
 */
public final class LogitsDump {
  private LogitsDump() {}

  public static void main(String[] args) throws IOException {
    Path model = Path.of(args[0]);
    StorageType st = StorageType.valueOf(args[1].toUpperCase(java.util.Locale.ROOT));
    int[] prompt = Arrays.stream(args[2].split(",")).mapToInt(Integer::parseInt).toArray();
    Path out = Path.of(args[3]);
    int newTokens = Integer.parseInt(args[4]);
    GpuRunnerOptions options =
        GpuRunnerOptions.defaults()
            .withStorage(st)
            .withKvBlocks(1 + (prompt.length + newTokens + 15) / 16)
            .withMaxNumSeqs(1)
            .withMaxBatchedTokens(Math.max(prompt.length, 16));
    try (GpuLlamaRunner runner = GpuLlamaRunner.open(model, options)) {
      int[] table = new int[(prompt.length + newTokens + 15) / 16];
      for (int i = 0; i < table.length; i++) {
        table[i] = 1 + i;
      }
      float[] logits = runner.forward(List.of(new SequenceChunk(1, prompt, 0, table, true)))[0];
      ByteBuffer bytes = ByteBuffer.allocate(4 * logits.length).order(ByteOrder.LITTLE_ENDIAN);
      bytes.asFloatBuffer().put(logits);
      Files.write(out, bytes.array());
      int[] tokens = new int[newTokens];
      float[] step = logits;
      for (int i = 0; i < newTokens; i++) {
        int best = 0;
        for (int v = 1; v < step.length; v++) {
          if (step[v] > step[best]) {
            best = v;
          }
        }
        tokens[i] = best;
        if (i + 1 < newTokens) {
          step =
              runner
                  .forward(
                      List.of(
                          new SequenceChunk(1, new int[] {best}, prompt.length + i, table, true)))[
                  0];
        }
      }
      Files.writeString(
          Path.of(out + ".tokens"),
          String.join(",", Arrays.stream(tokens).mapToObj(Integer::toString).toList()) + "\n");
      System.out.println("[kiln] " + runner.startupReport().line());
    }
  }
}
