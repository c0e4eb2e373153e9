using System.Text;

namespace KvReplica.Protocol.Wire;

/// <summary>
/// The data-model rules a request must meet, shared by the replica (which enforces them) and the
/// client library (which reports them before sending). A violation is request-local: the request
/// gets <see cref="ErrorCode.InvalidRequest"/> and the connection stays open.
/// </summary>
public static class RequestValidation
{
    /// <summary>Returns null if <paramref name="request"/> is valid, else a one-line reason.</summary>
    public static string? Check(ClientRequest request, int maxValueBytes)
    {
        if (!Enum.IsDefined(request.Operation))
        {
            return $"unknown operation {(int)request.Operation}";
        }
        if (request.Operation == Operation.Status)
        {
            return null; // no key: it asks about the replica itself
        }
        bool accessChange = request.Operation is Operation.UserPut or Operation.UserDelete or Operation.RolePut or Operation.RoleDelete;
        string? keyError = accessChange
            ? Auth.AccessKeys.CheckName(request.Key ?? "", request.Operation is Operation.UserPut or Operation.UserDelete ? "user" : "role")
            : CheckKey(request.Key);
        if (keyError is not null)
        {
            return keyError;
        }
        if (request.Operation is Operation.Put or Operation.UserPut or Operation.RolePut)
        {
            if (request.Value is null)
            {
                return $"{request.Operation} needs a value";
            }
            if (request.Value.Length > maxValueBytes)
            {
                return $"value is {request.Value.Length} bytes; the limit is {maxValueBytes}";
            }
        }
        if (IsWrite(request.Operation) && request.Sequence <= 0)
        {
            return "a write needs a client sequence number of 1 or more";
        }
        return null;
    }

    /// <summary>Operations that go through the total order (and so carry a client id and sequence number).</summary>
    public static bool IsWrite(Operation operation) =>
        operation is Operation.Put or Operation.Delete or Operation.UserPut or Operation.UserDelete or Operation.RolePut or Operation.RoleDelete;

    /// <summary>Returns null if <paramref name="key"/> is a valid key, else a one-line reason.</summary>
    public static string? CheckKey(string? key)
    {
        if (string.IsNullOrEmpty(key))
        {
            return "key is empty";
        }
        int bytes;
        try
        {
            bytes = StrictUtf8.GetByteCount(key);
        }
        catch (EncoderFallbackException)
        {
            return "key is not valid UTF-8 text";
        }
        return bytes > Limits.MaxKeyBytes ? $"key is {bytes} bytes; the limit is {Limits.MaxKeyBytes}" : null;
    }

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);
}
