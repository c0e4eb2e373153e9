using Microsoft.Extensions.Configuration;

namespace KvReplica.Protocol.Config;

/// <summary>
/// Reads cluster.json from disk into a validated <see cref="ClusterConfig"/>, for the daemon and
/// the client alike. This is the only file Protocol/ ever opens, and only at start-up; the
/// replica core itself never does I/O.
/// </summary>
public static class ClusterConfigFile
{
    /// <summary>Throws <see cref="ConfigException"/> with a one-line reason for any unusable file.</summary>
    public static ClusterConfig Load(string path)
    {
        string full;
        try
        {
            full = Path.GetFullPath(path);
        }
        catch (Exception e) when (e is ArgumentException or NotSupportedException or PathTooLongException)
        {
            throw new ConfigException($"'{path}' is not a usable file path ({e.Message})");
        }
        if (!File.Exists(full))
        {
            throw new ConfigException(Directory.Exists(full) ? $"'{path}' is a directory, not a cluster.json file" : $"config file '{path}' not found");
        }
        IConfiguration json;
        try
        {
            json = new ConfigurationBuilder().AddJsonFile(full, optional: false, reloadOnChange: false).Build();
        }
        catch (UnauthorizedAccessException e)
        {
            throw new ConfigException($"{path} cannot be read: {e.Message}");
        }
        catch (Exception e) when (e is FormatException or InvalidDataException or IOException or System.Text.Json.JsonException)
        {
            var innermost = e;
            while (innermost.InnerException is not null)
            {
                innermost = innermost.InnerException;
            }
            throw new ConfigException($"{path} is not valid JSON: {innermost.Message}");
        }
        return ClusterConfigReader.Read(json, path);
    }
}
