package io.kiln.bench;

import static org.junit.jupiter.api.Assertions.*;

import java.util.List;
import org.junit.jupiter.api.Test;

/** The bench's texts: the same for every run, of mixed lengths, some past 128 tokens. */
class EmbedCpuBenchTest {
  @Test
  void mixedTextsAreSeededAndOfMixedLengths() {
    List<String> sentences = List.of("one two three four", "five six seven", "eight nine ten");
    List<String> a = EmbedCpuBench.mixedTexts(sentences, 1000, 42);
    assertEquals(a, EmbedCpuBench.mixedTexts(sentences, 1000, 42));
    assertEquals(1000, a.size());
    int[] words = a.stream().mapToInt(t -> t.split(" ").length).toArray();
    assertEquals(5, java.util.Arrays.stream(words).min().orElseThrow());
    assertTrue(java.util.Arrays.stream(words).max().orElseThrow() > 130);
    long longOnes = java.util.Arrays.stream(words).filter(w -> w > 60).count();
    assertTrue(longOnes > 80 && longOnes < 200, "about one in eight long: " + longOnes);
  }

  @Test
  void medianAndCosines() {
    assertEquals(2.0, ModelBenchmark.median(List.of(3.0, 1.0, 2.0)));
    assertEquals(2.5, ModelBenchmark.median(List.of(4.0, 1.0, 2.0, 3.0)));
    double[] c =
        EmbedCpuBench.cosines(new float[][] {{1, 0}, {1, 1}}, new float[][] {{2, 0}, {-1, -1}});
    assertEquals(1.0, c[0], 1e-12);
    assertEquals(-1.0, c[1], 1e-12);
  }
}
