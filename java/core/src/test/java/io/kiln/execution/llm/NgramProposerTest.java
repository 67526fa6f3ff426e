package io.kiln.execution.llm;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import org.junit.jupiter.api.Test;

class NgramProposerTest {
  private static int[] lookup(NgramProposer proposer, int limit, int... tokens) {
    return proposer.lookup(tokens, tokens.length, limit).tokens();
  }

  @Test
  void proposesWhatFollowedTheLatestEarlierMatch() {
    NgramProposer proposer = new NgramProposer(1, 3);
    // "7 8" occurs twice before the suffix; the later occurrence wins.
    assertArrayEquals(new int[] {2, 3}, lookup(proposer, 2, 7, 8, 1, 9, 7, 8, 2, 3, 5, 7, 8));
    assertNull(proposer.lookup(new int[] {7, 8, 7}, 3, 2).probabilities(), "a point mass");
  }

  @Test
  void triesTheLongestSuffixFirst() {
    NgramProposer proposer = new NgramProposer(1, 3);
    // The 1-gram "8" last occurred before 6, but the 2-gram "5 8" occurred before 4.
    assertArrayEquals(new int[] {4}, lookup(proposer, 1, 5, 8, 4, 1, 8, 6, 5, 8));
  }

  @Test
  void stopsAtTheLimitAndAtTheEndOfTheKnownTokens() {
    NgramProposer proposer = new NgramProposer(1, 2);
    assertArrayEquals(new int[] {1}, lookup(proposer, 1, 1, 2, 1, 2, 1, 2), "limit 1");
    // The latest "1 2" before the suffix has only two known tokens after it.
    assertArrayEquals(new int[] {1, 2}, lookup(proposer, 3, 1, 2, 1, 2, 1, 2));
    // The continuation of an overlapping match runs into the suffix itself.
    assertArrayEquals(new int[] {3, 9}, lookup(proposer, 4, 9, 9, 3, 9));
  }

  @Test
  void proposesNothingWithoutAMatchOrRoom() {
    NgramProposer proposer = new NgramProposer(2, 3);
    assertEquals(0, lookup(proposer, 4, 1, 2, 3, 4).length);
    assertEquals(0, lookup(proposer, 0, 1, 2, 1, 2).length);
    assertEquals(0, lookup(proposer, 4, 5).length);
  }
}
