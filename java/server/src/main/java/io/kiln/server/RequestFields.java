package io.kiln.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/**
 * Typed reads of one JSON request body. Every field must be one the endpoint knows, of the right
 * type; anything else is a 400 naming the parameter, never silently ignored. A JSON null counts as
 * absent, as in OpenAI's API.
 */
final class RequestFields {
  private final ObjectNode body;

  private RequestFields(ObjectNode body) {
    this.body = body;
  }

  /** The body as an object whose fields are all in {@code known}. */
  static RequestFields of(JsonNode body, Set<String> known) {
    if (body == null || !body.isObject()) {
      throw ApiException.badRequest("the request body must be a JSON object", null);
    }
    var names = body.fieldNames();
    while (names.hasNext()) {
      String name = names.next();
      if (!known.contains(name)) {
        throw ApiException.badRequest("unsupported parameter '" + name + "'", name);
      }
    }
    return new RequestFields((ObjectNode) body);
  }

  boolean has(String name) {
    JsonNode n = body.get(name);
    return n != null && !n.isNull();
  }

  JsonNode get(String name) {
    JsonNode n = body.get(name);
    return n == null || n.isNull() ? null : n;
  }

  String requiredString(String name) {
    String s = optionalString(name);
    if (s == null) {
      throw ApiException.badRequest("'" + name + "' is required", name);
    }
    return s;
  }

  String optionalString(String name) {
    JsonNode n = get(name);
    if (n == null) {
      return null;
    }
    if (!n.isTextual()) {
      throw wrongType(name, "a string");
    }
    return n.asText();
  }

  /** An integer in [min, max], or {@code fallback} when absent. */
  long integer(String name, long fallback, long min, long max) {
    JsonNode n = get(name);
    if (n == null) {
      return fallback;
    }
    if (!n.isIntegralNumber() || !n.canConvertToLong()) {
      throw wrongType(name, "an integer");
    }
    long v = n.asLong();
    if (v < min || v > max) {
      throw ApiException.badRequest(
          "'" + name + "' must be in [" + min + ", " + max + "], got " + v, name);
    }
    return v;
  }

  /** A finite number in [min, max], or {@code fallback} when absent. */
  double number(String name, double fallback, double min, double max) {
    JsonNode n = get(name);
    if (n == null) {
      return fallback;
    }
    if (!n.isNumber()) {
      throw wrongType(name, "a number");
    }
    double v = n.asDouble();
    if (!(v >= min && v <= max)) {
      throw ApiException.badRequest(
          "'" + name + "' must be in [" + min + ", " + max + "], got " + n, name);
    }
    return v;
  }

  boolean bool(String name, boolean fallback) {
    JsonNode n = get(name);
    if (n == null) {
      return fallback;
    }
    if (!n.isBoolean()) {
      throw wrongType(name, "a boolean");
    }
    return n.asBoolean();
  }

  /** A string or a list of strings (e.g. {@code stop}); empty when absent. */
  List<String> stringOrList(String name, int maxItems) {
    JsonNode n = get(name);
    List<String> out = new ArrayList<>();
    if (n == null) {
      return out;
    }
    if (n.isTextual()) {
      out.add(n.asText());
    } else if (n.isArray()) {
      for (JsonNode item : n) {
        if (!item.isTextual()) {
          throw wrongType(name, "a string or a list of strings");
        }
        out.add(item.asText());
      }
    } else {
      throw wrongType(name, "a string or a list of strings");
    }
    if (out.size() > maxItems) {
      throw ApiException.badRequest(
          "'" + name + "' has " + out.size() + " items, more than " + maxItems, name);
    }
    return out;
  }

  /** Refuses {@code name} unless absent or equal to the only value Kiln implements. */
  void onlyDefault(String name, Object implemented) {
    JsonNode n = get(name);
    if (n == null) {
      return;
    }
    boolean same =
        implemented instanceof Boolean b
            ? n.isBoolean() && n.asBoolean() == b
            : implemented instanceof Number num
                ? n.isNumber() && n.asDouble() == num.doubleValue()
                : n.isTextual() && n.asText().equals(implemented);
    if (!same) {
      throw ApiException.badRequest(
          "'" + name + "' = " + n + " is not supported; Kiln implements only " + implemented, name);
    }
  }

  /** Refuses any present value of a parameter Kiln does not implement. */
  void unsupported(String name) {
    if (has(name)) {
      throw ApiException.badRequest("'" + name + "' is not supported by Kiln", name);
    }
  }

  static ApiException wrongType(String name, String expected) {
    return ApiException.badRequest("'" + name + "' must be " + expected, name);
  }
}
