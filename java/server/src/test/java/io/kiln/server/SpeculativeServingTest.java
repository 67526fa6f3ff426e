package io.kiln.server;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import io.kiln.execution.llm.SpeculativeConfig;
import io.kiln.model.llama.PublicLlama;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/**
 * A speculating server answers greedy requests with the tokens plain decoding gives (the public
 * tiny Llama's Hugging Face references), and /metrics counts its proposals.
 */
class SpeculativeServingTest {
  private static String body(PublicLlama.Case c) {
    StringBuilder ids = new StringBuilder();
    for (int id : c.prompt()) {
      ids.append(ids.length() == 0 ? "" : ",").append(id);
    }
    return "{\"model\":\"llama\",\"prompt\":["
        + ids
        + "],\"max_tokens\":"
        + c.greedyNewTokens().length
        + ",\"temperature\":0,\"ignore_eos\":true,\"return_token_ids\":true}";
  }

  private static int[] ints(JsonNode array) {
    int[] out = new int[array.size()];
    for (int i = 0; i < out.length; i++) {
      out[i] = array.get(i).asInt();
    }
    return out;
  }

  /** The value of a metric line {@code name value}; fails when the metric is missing. */
  private static double metric(String scrape, String name) {
    Matcher m = Pattern.compile("(?m)^" + Pattern.quote(name) + " (\\S+)$").matcher(scrape);
    assertTrue(m.find(), name + " missing from\n" + scrape);
    return Double.parseDouble(m.group(1));
  }

  /** Every reference prompt's greedy completion equals the reference; returns the metrics. */
  private static String serveReferences(SpeculativeConfig speculative, Path draft)
      throws Exception {
    Path model = PublicLlama.directory();
    try (KilnServer server =
        KilnServer.start(TestServers.options(model).withSpeculative(speculative, draft))) {
      for (PublicLlama.Case c : PublicLlama.cases()) {
        HttpResponse<String> r = TestServers.post(server, "/v1/completions", body(c), null);
        assertEquals(200, r.statusCode(), r.body());
        JsonNode json = TestServers.json(r.body());
        assertArrayEquals(c.greedyNewTokens(), ints(json.at("/choices/0/token_ids")), r.body());
      }
      return TestServers.get(server, "/metrics").body();
    }
  }

  @Test
  void ngramSpeculationKeepsTheGreedyTokensAndCountsProposals() throws Exception {
    String metrics = serveReferences(SpeculativeConfig.ngram(4), null);
    double proposed = metric(metrics, "kiln:spec_proposed_tokens_total");
    double accepted = metric(metrics, "kiln:spec_accepted_tokens_total");
    double steps = metric(metrics, "kiln:spec_verification_steps_total");
    assertTrue(proposed > 0, metrics);
    assertTrue(steps > 0 && accepted <= proposed, metrics);
    assertEquals(accepted / proposed, metric(metrics, "kiln:spec_acceptance_rate"), 1e-9);
  }

  @Test
  void aSelfDraftIsAlmostAlwaysAccepted() throws Exception {
    String metrics = serveReferences(SpeculativeConfig.draft(4), PublicLlama.directory());
    assertTrue(metric(metrics, "kiln:spec_acceptance_rate") >= 0.9, metrics);
    // Every request finished, so the draft's KV blocks are all back.
    assertEquals(0, metric(metrics, "kiln:spec_draft_kv_blocks_used"));
  }

  @Test
  void aPlainServerHasNoSpeculationMetrics() throws Exception {
    try (KilnServer server = KilnServer.start(TestServers.options(PublicLlama.directory()))) {
      assertFalse(TestServers.get(server, "/metrics").body().contains("kiln:spec_"));
    }
  }
}
