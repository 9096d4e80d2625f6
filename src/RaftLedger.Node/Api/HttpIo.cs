using System.Buffers;
using System.IO.Pipelines;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.Net.Http.Headers;

namespace RaftLedger.Node.Api;

/// <summary>Reading request bodies within the limit, and writing JSON and problem responses.</summary>
internal static class HttpIo
{
    public const string JsonContentType = "application/json";
    public const string ProblemContentType = "application/problem+json";

    /// <summary>A request body in a pooled buffer; return it with <see cref="Dispose"/>.</summary>
    public readonly struct Body(byte[] buffer, int length) : IDisposable
    {
        public ReadOnlySpan<byte> Span => buffer.AsSpan(0, length);

        public void Dispose() => ArrayPool<byte>.Shared.Return(buffer);
    }

    /// <summary>Reads the whole body, refusing non-JSON content types and bodies over the limit.</summary>
    public static async ValueTask<(Body Body, ApiError Error)> ReadJsonBodyAsync(HttpRequest request, CancellationToken cancellationToken)
    {
        if (!IsJsonContentType(request.ContentType))
        {
            return (default, new ApiError(415, "Unsupported media type",
                $"The body must be JSON, but Content-Type is '{JsonRequestReader.Truncate(request.ContentType!)}'; send Content-Type: application/json."));
        }

        if (request.ContentLength > ApiLimits.RequestBodyBytesMax)
        {
            return (default, ApiError.BodyTooLarge());
        }

        var buffer = ArrayPool<byte>.Shared.Rent((int)(request.ContentLength ?? 16 * 1024) + 1);
        var length = 0;
        var reader = request.BodyReader;
        while (true)
        {
            var read = await reader.ReadAsync(cancellationToken);
            var sequence = read.Buffer;
            if (length + sequence.Length > ApiLimits.RequestBodyBytesMax)
            {
                reader.AdvanceTo(sequence.End);
                ArrayPool<byte>.Shared.Return(buffer);
                return (default, ApiError.BodyTooLarge());
            }

            buffer = EnsureCapacity(buffer, length, length + (int)sequence.Length);
            sequence.CopyTo(buffer.AsSpan(length));
            length += (int)sequence.Length;
            reader.AdvanceTo(sequence.End);
            if (read.IsCompleted)
            {
                return (new Body(buffer, length), default);
            }
        }
    }

    private static byte[] EnsureCapacity(byte[] buffer, int used, int needed)
    {
        if (needed <= buffer.Length)
        {
            return buffer;
        }

        var larger = ArrayPool<byte>.Shared.Rent(Math.Max(needed, buffer.Length * 2));
        buffer.AsSpan(0, used).CopyTo(larger);
        ArrayPool<byte>.Shared.Return(buffer);
        return larger;
    }

    /// <summary>JSON, in UTF-8. A missing Content-Type is accepted as JSON, so quick curl calls work.</summary>
    private static bool IsJsonContentType(string? contentType)
    {
        if (string.IsNullOrEmpty(contentType))
        {
            return true;
        }

        return MediaTypeHeaderValue.TryParse(contentType, out var media) &&
            media.MediaType.Equals(JsonContentType, StringComparison.OrdinalIgnoreCase) &&
            (media.Charset.Length == 0 || media.Charset.Equals("utf-8", StringComparison.OrdinalIgnoreCase));
    }

    // Responses are JSON for programs, never embedded in HTML, so quotes and apostrophes in
    // error messages stay readable instead of becoming \u0027.
    private static readonly JsonWriterOptions WriterOptions = new()
    {
        SkipValidation = true,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    public delegate void JsonBodyWriter<TState>(Utf8JsonWriter writer, TState state);

    /// <summary>Writes a JSON response with <paramref name="write"/> (a static method, no captured state).</summary>
    public static async Task WriteJsonAsync<TState>(
        HttpResponse response, int statusCode, string contentType, TState state, JsonBodyWriter<TState> write)
    {
        response.StatusCode = statusCode;
        response.ContentType = contentType;
        WriteTo(response.BodyWriter, state, write);
        await response.BodyWriter.FlushAsync();
    }

    private static void WriteTo<TState>(PipeWriter pipe, TState state, JsonBodyWriter<TState> write)
    {
        using var writer = new Utf8JsonWriter(pipe, WriterOptions);
        write(writer, state);
    }

    public static Task WriteProblemAsync(HttpResponse response, ApiError error, int retryAfterSeconds = 0)
    {
        if (retryAfterSeconds > 0)
        {
            response.Headers.RetryAfter = retryAfterSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
        }

        return WriteJsonAsync(response, error.StatusCode, ProblemContentType, error, JsonResponseWriter.WriteProblem);
    }
}
