<#
.SYNOPSIS
  Tells Hallpass who is logged on at this computer, so the filter applies their policy.
.DESCRIPTION
  Assign it by Group Policy: User Configuration > Policies > Windows Settings > Scripts
  (Logon/Logoff), as a PowerShell script with the parameter -Action Logon (logon) or
  -Action Logoff (logoff). A scheduled task every 5 minutes with -Action Heartbeat keeps
  long sessions alive.
  At logon it also shows each acceptable use declaration the person has not accepted
  (ICT policy 14: GET /api/v1/declarations/pending) in a window with Accept and Decline,
  and records an acceptance (POST /api/v1/declarations). Declined or closed, the person
  stays restricted and is asked again on the first web page they open.
  The token is made once on the server:
    hallpass token create --name logon --scope sessions
  and kept in a file only administrators and SYSTEM can read (TokenFile), or passed in.
.EXAMPLE
  powershell -ExecutionPolicy Bypass -File hallpass-logon.ps1 -Action Logon -Url https://hallpass.school.local
#>
param(
  [Parameter(Mandatory = $true)][ValidateSet('Logon', 'Logoff', 'Heartbeat')][string]$Action,
  [string]$Url = $env:HALLPASS_URL,
  [string]$Token = $env:HALLPASS_TOKEN,
  [string]$TokenFile = "$env:ProgramData\Hallpass\token.txt",
  [string]$StateFile = "$env:LOCALAPPDATA\Hallpass\session.txt"
)
$ErrorActionPreference = 'Stop'
if (-not $Url) { throw 'Give -Url (the Hallpass console) or set HALLPASS_URL' }
$Url = $Url.TrimEnd('/')
if (-not $Token) { $Token = (Get-Content -Raw $TokenFile).Trim() }
$headers = @{ Authorization = "Bearer $Token" }

# The address this computer reaches the Hallpass server from.
$server = ([Uri]$Url).Host
$route = Find-NetRoute -RemoteIPAddress ([System.Net.Dns]::GetHostAddresses($server) |
  Where-Object AddressFamily -eq 'InterNetwork' | Select-Object -First 1) | Select-Object -First 1
$ip = $route.IPAddress

switch ($Action) {
  'Logon' {
    $body = @{ user = $env:USERNAME; ip = $ip; workstation = $env:COMPUTERNAME } | ConvertTo-Json
    $reply = Invoke-RestMethod -Method Post -Uri "$Url/api/v1/sessions" -Headers $headers `
      -ContentType 'application/json' -Body $body
    New-Item -ItemType Directory -Force -Path (Split-Path $StateFile) | Out-Null
    Set-Content -Path $StateFile -Value $reply.id

    # The acceptable use declaration at logon (ICT policy 14).
    $user = [Uri]::EscapeDataString($env:USERNAME)
    $pending = @(Invoke-RestMethod -Method Get -Uri "$Url/api/v1/declarations/pending?user=$user" -Headers $headers)
    if ($pending.Count -gt 0) { Add-Type -AssemblyName System.Windows.Forms }
    foreach ($d in $pending) {
      $text = "$($d.text)`r`n`r`nDo you accept this declaration (version $($d.version))?"
      $answer = [System.Windows.Forms.MessageBox]::Show($text, $d.title, 'YesNo', 'Information')
      if ($answer -ne 'Yes') { break }
      $accept = @{ user = $env:USERNAME; document = $d.document; version = $d.version;
                   workstation = $env:COMPUTERNAME; ip = $ip } | ConvertTo-Json
      Invoke-RestMethod -Method Post -Uri "$Url/api/v1/declarations" -Headers $headers `
        -ContentType 'application/json' -Body $accept | Out-Null
    }
  }
  'Heartbeat' {
    $id = (Get-Content $StateFile).Trim()
    Invoke-RestMethod -Method Post -Uri "$Url/api/v1/sessions/$id/heartbeat" -Headers $headers | Out-Null
  }
  'Logoff' {
    if (Test-Path $StateFile) {
      $id = (Get-Content $StateFile).Trim()
      try { Invoke-RestMethod -Method Delete -Uri "$Url/api/v1/sessions/$id" -Headers $headers | Out-Null } catch { }
      Remove-Item $StateFile
    }
    # Whatever happened to the id, nobody stays logged on at this address.
    Invoke-RestMethod -Method Delete -Uri "$Url/api/v1/sessions?ip=$ip" -Headers $headers | Out-Null
  }
}
