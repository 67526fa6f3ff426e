package io.kiln.server;

/**
 * A request the server refuses, with the HTTP status and the fields of OpenAI's error body.
 *
 * @see ApiErrors
 */
final class ApiException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  final int status;
  final String type;
  final String param;
  final String code;

  ApiException(int status, String type, String message, String param, String code) {
    super(message);
    this.status = status;
    this.type = type;
    this.param = param;
    this.code = code;
  }

  static ApiException badRequest(String message, String param) {
    return new ApiException(400, "invalid_request_error", message, param, null);
  }

  static ApiException notFound(String message, String code) {
    return new ApiException(404, "invalid_request_error", message, null, code);
  }

  static ApiException unauthorized(String message) {
    return new ApiException(401, "invalid_request_error", message, null, "invalid_api_key");
  }

  static ApiException tooLarge(long limit) {
    return new ApiException(
        413,
        "invalid_request_error",
        "the request body is larger than the limit of " + limit + " bytes",
        null,
        "request_too_large");
  }

  static ApiException tooManyRequests(int waiting) {
    return new ApiException(
        429,
        "rate_limit_error",
        "the server has " + waiting + " requests waiting already; retry later",
        null,
        "rate_limit_exceeded");
  }

  static ApiException unavailable(String message) {
    return new ApiException(503, "server_error", message, null, "service_unavailable");
  }

  static ApiException internal(String message) {
    return new ApiException(500, "server_error", message, null, null);
  }
}
