package io.kiln.embedding;

import static org.junit.jupiter.api.Assertions.*;

import io.kiln.InvalidInputException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Each pooling mode on a hand-made batch with padding, and how the config files name them. */
class PoolingTest {
  // Two rows of three tokens, hidden size 2; row 1 has one padding token (a huge value that must
  // never leak into any mode).
  private static final float[] HIDDEN = {1, 2, 3, 4, 5, 6, /* row 1 */ 7, -8, 9, 10, 1e6f, 1e6f};
  private static final long[] ROW0 = {1, 1, 1};
  private static final long[] ROW1 = {1, 1, 0};

  @Test
  void everyModeKeepsToTheMask() {
    assertArrayEquals(new float[] {7, -8}, Pooling.CLS.pool(HIDDEN, 1, 3, 2, ROW1));
    assertArrayEquals(new float[] {8, 1}, Pooling.MEAN.pool(HIDDEN, 1, 3, 2, ROW1));
    assertArrayEquals(new float[] {9, 10}, Pooling.MAX.pool(HIDDEN, 1, 3, 2, ROW1));
    assertArrayEquals(new float[] {9, 10}, Pooling.LAST_TOKEN.pool(HIDDEN, 1, 3, 2, ROW1));
    float root2 = (float) Math.sqrt(2);
    assertArrayEquals(
        new float[] {16 / root2, 2 / root2},
        Pooling.MEAN_SQRT_LEN.pool(HIDDEN, 1, 3, 2, ROW1),
        1e-5f);
    assertArrayEquals(new float[] {5, 6}, Pooling.LAST_TOKEN.pool(HIDDEN, 0, 3, 2, ROW0));
    assertArrayEquals(new float[] {3, 4}, Pooling.MEAN.pool(HIDDEN, 0, 3, 2, ROW0));
    assertThrows(
        InvalidInputException.class, () -> Pooling.MEAN.pool(HIDDEN, 0, 3, 2, new long[3]));
  }

  @Test
  void namesRoundTrip() {
    for (Pooling p : Pooling.values()) {
      assertEquals(p, Pooling.fromName(p.optionName()));
      assertEquals(p, Pooling.fromName(p.name()));
    }
    assertThrows(InvalidInputException.class, () -> Pooling.fromName("median"));
  }

  @Test
  void configFlagsAndModulesAreRead(@TempDir Path dir) throws Exception {
    String[][] cases = {
      {"pooling_mode_cls_token", "CLS"},
      {"pooling_mode_mean_tokens", "MEAN"},
      {"pooling_mode_max_tokens", "MAX"},
      {"pooling_mode_mean_sqrt_len_tokens", "MEAN_SQRT_LEN"},
      {"pooling_mode_lasttoken", "LAST_TOKEN"}
    };
    Files.createDirectories(dir.resolve("1_Pooling"));
    for (String[] c : cases) {
      Files.writeString(dir.resolve("1_Pooling/config.json"), "{\"" + c[0] + "\": true}");
      assertEquals(Pooling.valueOf(c[1]), SentenceTransformersConfig.read(dir).pooling());
    }
    assertNull(SentenceTransformersConfig.read(dir).normalize(), "no modules.json: not said");
    Files.writeString(
        dir.resolve("modules.json"),
        "[{\"path\": \"pool\", \"type\": \"sentence_transformers.models.Pooling\"}]");
    Files.createDirectories(dir.resolve("pool"));
    Files.writeString(dir.resolve("pool/config.json"), "{\"pooling_mode\": \"lasttoken\"}");
    SentenceTransformersConfig read = SentenceTransformersConfig.read(dir);
    assertEquals(Pooling.LAST_TOKEN, read.pooling());
    assertEquals(Boolean.FALSE, read.normalize());
    Files.writeString(
        dir.resolve("pool/config.json"),
        "{\"pooling_mode_cls_token\": true, \"pooling_mode_mean_tokens\": true}");
    assertThrows(io.kiln.ModelException.class, () -> SentenceTransformersConfig.read(dir));
  }
}
