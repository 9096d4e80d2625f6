namespace RaftLedger.Node.Api;

/// <summary>
/// A request the API refuses, written as <c>application/problem+json</c>. <see cref="Detail"/>
/// says what was wrong and what to do about it; it is what a user reads first.
/// </summary>
public readonly record struct ApiError(int StatusCode, string Title, string Detail)
{
    public static ApiError BadRequest(string detail) => new(400, "Invalid request", detail);

    public static ApiError TooLarge(string detail) => new(413, "Request too large", detail);

    public static ApiError NotFound(string detail) => new(404, "Not found", detail);

    public static ApiError BatchTooLarge(string what) => TooLarge(
        $"A request may carry at most {ApiLimits.EventsPerBatchMax} {what}; split the batch into several requests.");

    public static ApiError BodyTooLarge() => TooLarge(
        $"The request body is larger than {ApiLimits.RequestBodyBytesMax} bytes; send fewer events per request.");
}
