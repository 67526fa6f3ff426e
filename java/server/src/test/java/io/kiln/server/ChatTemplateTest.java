package io.kiln.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.LocalDate;
import java.time.format.DateTimeFormatter;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Chat templates rendered with Jinjava as Hugging Face renders them. */
class ChatTemplateTest {
  @TempDir Path dir;

  private ChatTemplate template(String templateJson) throws Exception {
    Files.writeString(
        dir.resolve("tokenizer_config.json"),
        "{\"bos_token\": {\"content\": \"<s>\"}, \"eos_token\": \"</s>\", \"chat_template\": "
            + templateJson
            + "}");
    return ChatTemplate.load(dir);
  }

  private static List<Map<String, Object>> messages(String... roleContent) {
    List<Map<String, Object>> out = new java.util.ArrayList<>();
    for (int i = 0; i < roleContent.length; i += 2) {
      out.add(Map.of("role", roleContent[i], "content", roleContent[i + 1]));
    }
    return out;
  }

  @Test
  void theTinyModelsLlama3TemplateRendersOneBosAndTheGenerationPrompt() {
    ChatTemplate template = ChatTemplate.load(TestServers.chatModel());
    String text = template.render(messages("system", "Be brief.", "user", " Hi "), true);
    assertEquals(
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
            + "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
            + "<|start_header_id|>assistant<|end_header_id|>\n\n",
        text);
    assertTrue(
        template.render(messages("user", "Hi"), false).endsWith("Hi<|eot_id|>"),
        "no generation prompt when not asked");
  }

  @Test
  void blocksAreTrimmedLikeHuggingFace() throws Exception {
    ChatTemplate template =
        template(
            "\"{{ bos_token }}{% for m in messages %}\\n  {% if m['role'] == 'user' %}\\n"
                + "[INST] {{ m['content'] }} [/INST]\\n  {% else %}\\n{{ m['content'] }}{{ eos_token }}\\n"
                + "  {% endif %}\\n{% endfor %}\"");
    assertEquals(
        "<s>[INST] a [/INST]\nb</s>\n",
        template.render(messages("user", "a", "assistant", "b"), true));
  }

  @Test
  void strftimeNowGivesTodaysDate() throws Exception {
    ChatTemplate template = template("\"{{ strftime_now('%d %b %Y') }}\"");
    String expected =
        LocalDate.now().format(DateTimeFormatter.ofPattern("dd MMM yyyy", Locale.ENGLISH));
    assertEquals(expected, template.render(messages("user", "x"), true));
  }

  @Test
  void aSyntaxErrorIsA400() throws Exception {
    ChatTemplate template = template("\"{% for m in messages %}{{ m['content'] }\"");
    ApiException e =
        assertThrows(ApiException.class, () -> template.render(messages("user", "x"), true));
    assertEquals(400, e.status);
  }
}
